#!/usr/bin/env bash
# Whole-system benchmark: bawaba's DNS server against Unbound, both enforcing the same
# 1,000,000-rule policy and forwarding to the same local authoritative server (NSD), in one run.
#
#   bash scripts/bench-dns.sh                 # the full run (about 5-10 minutes on 2 vCPU)
#   RULES=100000 bash scripts/bench-dns.sh    # smaller policy, for a quick look
#
# Settings (environment): NAMES (zone names, 200000), RULES (1000000), QUERIES (query file lines,
# 100000), DISTINCT (names the queries are drawn from, 20000), BLOCKED_PERCENT (10), PASSES (times
# dnsperf walks the query file in the throughput run, 3), LATENCY_QPS (fixed rate of the latency
# run, 5000), SAME_LOAD_QPS (fixed rate of the same-load CPU run, 50000), PIN (0: the scheduler
# places everything; 1: with two or more CPUs, each server runs on CPU 0 alone and dnsperf and NSD
# on CPU 1, so a server has at most one core whatever threads it uses), RELOAD_SECONDS (length of the reload run, 30), BAWABA (the binary; default target/release/bawaba, built if missing), KEEP_WORK (set:
# keep the temporary directory with the data, configs and logs), FLOOR (the dns-floor example, built
# if missing).
#
# What it does: installs unbound, nsd and dnsperf with apt-get if missing; generates the data
# (scripts/bench-dns-gen.py, fixed seed); starts NSD on loopback; loads the policy into bawaba
# (init, order add, `policy import --format domains`, approve as a second actor, publish, serve)
# and, as the RPZ zone `bawaba policy export` writes, into Unbound; then measures each server, one
# after the other: load time (start to first answer), RSS after load and after the runs, a
# throughput run (dnsperf, one thread), a fixed-rate latency run (dnsperf -v: per-query latencies,
# from which average, p50 and p99 are computed; dnsperf 2.10 prints no percentiles itself), and server
# CPU time (utime+stime from /proc/PID/stat) per 1,000 answered queries: in the throughput run
# (each server as fast as it goes), and at the same offered load for both (a run of PASSES walks at
# SAME_LOAD_QPS, and the latency run at LATENCY_QPS; dnsperf shares the two CPUs, so flat-out qps
# partly measure the client), and
# a reload run: the fixed rate for RELOAD_SECONDS while the server takes in a new 1M-rule policy
# (bawaba: a newer signed bundle appears in its bundle directory; Unbound: SIGHUP), reporting p99,
# max latency and lost queries. Last, the two fixed-rate runs against the dns-floor example (a server
# that only turns each query into an NXDOMAIN answer, one blocking receive and one send per query):
# the part of a server's CPU per query that is the kernel's, under any server on this machine.
# The last line is `ratio qps bawaba/unbound <value>`.
#
# Loopback only, no outside network after the packages are installed. Every process it starts is
# killed by PID, and the temporary directory removed, on any exit (trap).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD

NAMES=${NAMES:-200000}
RULES=${RULES:-1000000}
QUERIES=${QUERIES:-100000}
DISTINCT=${DISTINCT:-20000}
BLOCKED_PERCENT=${BLOCKED_PERCENT:-10}
PASSES=${PASSES:-3}
LATENCY_QPS=${LATENCY_QPS:-5000}
SAME_LOAD_QPS=${SAME_LOAD_QPS:-50000}
PIN=${PIN:-0}
RELOAD_SECONDS=${RELOAD_SECONDS:-30}
BAWABA=${BAWABA:-$ROOT/target/release/bawaba}
FLOOR=${FLOOR:-$ROOT/target/release/examples/dns-floor}

PIDS=()
WORK=$(mktemp -d /tmp/bench-dns.XXXXXX)
cleanup() {
    stop_started
    remove_work bench-dns.sh
}
trap cleanup EXIT
trap 'echo "bench-dns.sh: failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM


# ---- dependencies -------------------------------------------------------------------------------
install_packages unbound nsd dnsperf dnsutils python3
ON_SERVER=()
ON_CLIENT=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    ON_SERVER=(taskset -c 0)
    ON_CLIENT=(taskset -c 1)
fi
# Debian starts the packaged daemons; this benchmark runs its own on other ports and leaves those alone.
if [ ! -x "$BAWABA" ]; then
    log "building bawaba (release)"
    cargo build --release -p bawaba
fi
if [ ! -x "$FLOOR" ]; then
    log "building the dns-floor example (release)"
    cargo build --release -p bawaba-dns --example dns-floor
fi

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Waits until the server on $1 answers $2 (any RCODE); prints the milliseconds since $3.
wait_answer() {
    local port=$1 name=$2 since=$3 pid=$4 deadline=$(($(date +%s) + 600))
    while ! dig @127.0.0.1 -p "$port" +tries=1 +time=1 "$name" A 2>/dev/null | grep -q "status: "; do
        kill -0 "$pid" 2>/dev/null || { echo "server (pid $pid) exited while loading" >&2; return 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "server did not answer within 600 s" >&2; return 1; }
        sleep 0.02
    done
    echo $(($(now_ms) - since))
}

# ---- data ---------------------------------------------------------------------------------------
log "generating $NAMES zone names, $RULES rules, $QUERIES queries over $DISTINCT names"
t0=$(now_ms)
python3 "$ROOT/scripts/bench-dns-gen.py" "$WORK" "$NAMES" "$RULES" "$QUERIES" "$DISTINCT" "$BLOCKED_PERCENT"
log "generated in $(($(now_ms) - t0)) ms: $(cat "$WORK/summary.txt")"
PROBE=$(head -1 "$WORK/queries.txt" | cut -d' ' -f1)

# ---- the authoritative "internet" ---------------------------------------------------------------
NSD_PORT=$(free_port)
cat > "$WORK/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1
  port: $NSD_PORT
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$WORK"
  database: ""
  zonelistfile: "$WORK/zone.list"
  xfrdfile: "$WORK/xfrd.state"
  pidfile: "$WORK/nsd.pid"
  logfile: "$WORK/nsd.log"
  verbosity: 0
  # NSD's response rate limiting (200/s by default) drops part of a resolver's burst of cache
  # misses from one address; it would measure NSD's policy, not the resolvers.
  rrl-ratelimit: 0
remote-control:
  control-enable: no
$(cat "$WORK/nsd-zones.conf")
EOF
log "starting nsd on 127.0.0.1:$NSD_PORT"
"${ON_CLIENT[@]}" nsd -d -c "$WORK/nsd.conf" > "$WORK/nsd.out" 2>&1 &
PIDS+=($!)
NSD_PID=$!
wait_answer "$NSD_PORT" "$PROBE" "$(now_ms)" "$NSD_PID" > /dev/null || { cat "$WORK/nsd.out" "$WORK/nsd.log" >&2; exit 1; }

# ---- bawaba: the policy through the normal workflow ----------------------------------------------
BAWABA_PORT=$(free_port)
mkdir -p "$WORK/bawaba"
cat > "$WORK/bawaba.toml" <<EOF
[store]
data_dir = "$WORK/bawaba/data"
[serve]
reload_interval_secs = 1
threads = 1
metrics_listen = "127.0.0.1:$(free_port STREAM)"
[dns]
enabled = true
listen = ["127.0.0.1:$BAWABA_PORT"]
upstreams = ["127.0.0.1:$NSD_PORT"]
EOF
b() { "$BAWABA" --config "$WORK/bawaba.toml" "$@"; }
b init > /dev/null
b --actor alice order add --authority 'Benchmark Court' --reference BENCH-1 --category court-order \
    --expires +30d --summary 'benchmark policy' --appeal-contact appeals@bench.example > /dev/null
log "bawaba policy import of $(wc -l < "$WORK/rules.txt") lines"
t0=$(now_ms)
b --actor alice policy import --order 1 --format domains --action nxdomain "$WORK/rules.txt" > "$WORK/import.txt"
IMPORT_MS=$(($(now_ms) - t0))
log "imported in $IMPORT_MS ms: $(tail -3 "$WORK/import.txt" | tr '\n' ' ')"
b --actor bob order approve 1 > /dev/null
t0=$(now_ms)
b --actor bob policy publish > /dev/null
PUBLISH_MS=$(($(now_ms) - t0))
# Version 2 for the reload run: one more order and rule, published now and kept aside until the
# reload run moves it into the bundle directory (serve polls every second).
b --actor alice order add --authority 'Benchmark Court' --reference BENCH-2 --category court-order \
    --expires +30d --summary 'reload' --appeal-contact appeals@bench.example > /dev/null
b --actor alice rule add --order 2 --action nxdomain reload-marker.example > /dev/null
b --actor bob order approve 2 > /dev/null
b --actor bob policy publish > /dev/null
mkdir -p "$WORK/staged"
V2=$(ls "$WORK/bawaba/data/bundles/"*v00000002*.bundle)
mv "$V2" "$WORK/staged/"
t0=$(now_ms)
b policy export --out "$WORK/rpz.zone"
EXPORT_MS=$(($(now_ms) - t0))
log "published in $PUBLISH_MS ms, exported ($(grep -vc '^;' "$WORK/rpz.zone") lines) in $EXPORT_MS ms"

# ---- unbound config -------------------------------------------------------------------------------
UNBOUND_PORT=$(free_port)
cat > "$WORK/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: $UNBOUND_PORT
  do-ip6: no
  num-threads: 1
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$WORK"
  pidfile: "$WORK/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  module-config: "respip validator iterator"
  do-not-query-localhost: no
  msg-cache-size: 64m
  rrset-cache-size: 128m
  qname-minimisation: no
rpz:
  name: rpz.bawaba.invalid
  zonefile: "$WORK/rpz.zone"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$NSD_PORT
EOF

# ---- measuring one server -------------------------------------------------------------------------
# fixed_rate_runs NAME PORT PID: the same-load run (PASSES walks at SAME_LOAD_QPS) and the latency
# run (one walk at LATENCY_QPS, with -v), each with the server's CPU time around it; fills
# R_same_cpu_<NAME>, R_same_done_<NAME>, R_lat_cpu_<NAME> and R_lat_done_<NAME>, and leaves the
# dnsperf output in same-load-<NAME>.txt and latency-<NAME>.txt.
fixed_rate_runs() {
    local name=$1 port=$2 pid=$3 s0 s1 l0 l1
    log "$name: same-load run at $SAME_LOAD_QPS qps ($PASSES passes)"
    s0=$(cpu_ticks "$pid")
    "${ON_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -T 1 -c 1 -q 200 -n "$PASSES" -t 2 -Q "$SAME_LOAD_QPS" \
        > "$WORK/same-load-$name.txt" 2>&1
    s1=$(cpu_ticks "$pid")
    log "$name: latency run at $LATENCY_QPS qps"
    l0=$(cpu_ticks "$pid")
    "${ON_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -T 1 -c 1 -q 200 -n 1 -t 2 -Q "$LATENCY_QPS" -v \
        > "$WORK/latency-$name.txt" 2>&1
    l1=$(cpu_ticks "$pid")
    eval "R_same_cpu_$name=$((s1 - s0)) R_lat_cpu_$name=$((l1 - l0))"
    eval "R_same_done_$name=$(awk '/Queries completed:/ {print $3}' "$WORK/same-load-$name.txt")"
    eval "R_lat_done_$name=$(awk '/Queries completed:/ {print $3}' "$WORK/latency-$name.txt")"
}

# measure NAME PORT PID START_MS: fills R_<field>_<NAME>.
measure() {
    local name=$1 port=$2 pid=$3 start=$4
    local load_ms rss_load rss_end c0 c1 out lat
    load_ms=$(wait_answer "$port" "$PROBE" "$start" "$pid")
    rss_load=$(rss_kb "$pid")
    log "$name answered after $load_ms ms, RSS $((rss_load / 1024)) MiB; throughput run ($PASSES passes)"
    c0=$(cpu_ticks "$pid")
    out=$("${ON_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -T 1 -c 1 -q 200 -n "$PASSES" -t 2 2>&1)
    c1=$(cpu_ticks "$pid")
    echo "$out" > "$WORK/dnsperf-$name.txt"
    local completed qps lost nxdomain
    completed=$(echo "$out" | awk '/Queries completed:/ {print $3}')
    lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
    qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
    nxdomain=$(echo "$out" | awk '/Response codes:/ {for (i = 1; i <= NF; i++) if ($i ~ /^NXDOMAIN/) print $(i + 1)}' | tr -d ',')
    log "$name: $qps qps, $completed completed, $lost lost; $(echo "$out" | grep "Response codes:" | sed "s/^ *//")"
    fixed_rate_runs "$name" "$port" "$pid"
    # Verbose lines: "> NOERROR name A 0.000123" (status, name, type, latency in seconds).
    lat=$(awk '$1 == ">" && $NF ~ /^[0-9.]+$/ {print $NF}' "$WORK/latency-$name.txt" | sort -g |
        awk '{v[NR] = $1; s += $1} END {if (NR == 0) {print "n/a n/a n/a n/a"; exit} i = int(NR * 0.99); if (i < 1) i = 1;
             m = int(NR * 0.5); if (m < 1) m = 1; printf "%.1f %.1f %d %.1f\n", s / NR * 1e6, v[i] * 1e6, NR, v[m] * 1e6}')
    # Reload run: the same fixed rate for RELOAD_SECONDS while the server takes in a new 1M-rule
    # policy 2 s in (bawaba: a newer bundle appears; Unbound: SIGHUP, how it reloads its zones).
    log "$name: reload run, $RELOAD_SECONDS s at $LATENCY_QPS qps, policy reload after 2 s"
    "${ON_CLIENT[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -T 1 -c 1 -q 200 -l "$RELOAD_SECONDS" -t 2 \
        -Q "$LATENCY_QPS" -v > "$WORK/reload-$name.txt" 2>&1 &
    local perf=$!
    sleep 2
    if [ "$name" = bawaba ]; then mv "$WORK/staged/"*.bundle "$WORK/bawaba/data/bundles/"; else kill -HUP "$pid"; fi
    wait "$perf" || true
    local rl
    rl=$(awk '$1 == ">" && $NF ~ /^[0-9.]+$/ {print $NF}' "$WORK/reload-$name.txt" | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) {print "n/a n/a"; exit} i = int(NR * 0.99); if (i < 1) i = 1;
             printf "%.1f %.1f\n", v[i] * 1e6, v[NR] * 1e6}')
    local rlost rdone
    rlost=$(awk '/Queries lost:/ {print $3}' "$WORK/reload-$name.txt")
    rdone=$(awk '/Queries completed:/ {print $3}' "$WORK/reload-$name.txt")
    log "$name: reload run p99/max (us) $rl, completed $rdone, lost $rlost"
    rss_end=$(rss_kb "$pid")
    eval "R_reload_$name='$rl' R_reload_lost_$name=$rlost R_reload_done_$name=$rdone"
    eval "R_load_$name=$load_ms R_rss_load_$name=$rss_load R_rss_end_$name=$rss_end R_qps_$name=$qps"
    eval "R_completed_$name=$completed R_lost_$name=$lost R_cpu_$name=$((c1 - c0))"
    eval "R_lat_$name='$lat' R_nxdomain_$name=$nxdomain"
}

log "starting bawaba serve on 127.0.0.1:$BAWABA_PORT"
start=$(now_ms)
"${ON_SERVER[@]}" "$BAWABA" --config "$WORK/bawaba.toml" serve > "$WORK/bawaba.out" 2> "$WORK/bawaba.log" &
PIDS+=($!)
BAWABA_PID=$!
measure bawaba "$BAWABA_PORT" "$BAWABA_PID" "$start"
# The "policy loaded" line (tracing may colour the field names: strip the escapes).
BAWABA_POLICY_MS=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/bawaba.log" | grep 'policy loaded' | grep -oE ' ms=[0-9]+' | head -1 | cut -d= -f2 || true)
kill "$BAWABA_PID"; wait "$BAWABA_PID" 2>/dev/null || true

log "starting unbound on 127.0.0.1:$UNBOUND_PORT"
start=$(now_ms)
"${ON_SERVER[@]}" unbound -d -c "$WORK/unbound.conf" > "$WORK/unbound.log" 2>&1 &
PIDS+=($!)
UNBOUND_PID=$!
measure unbound "$UNBOUND_PORT" "$UNBOUND_PID" "$start"
kill "$UNBOUND_PID"; wait "$UNBOUND_PID" 2>/dev/null || true

# The floor: the same two fixed-rate runs against a server that does no DNS work.
FLOOR_PORT=$(free_port)
"${ON_SERVER[@]}" "$FLOOR" "127.0.0.1:$FLOOR_PORT" &
PIDS+=($!)
FLOOR_PID=$!
wait_answer "$FLOOR_PORT" "$PROBE" "$(now_ms)" "$FLOOR_PID" > /dev/null
fixed_rate_runs floor "$FLOOR_PORT" "$FLOOR_PID"
kill "$FLOOR_PID"; wait "$FLOOR_PID" 2>/dev/null || true

# ---- report -----------------------------------------------------------------------------------------
per1000() { awk -v t="$1" -v n="$2" -v hz="$TICKS" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1000 / n * 1000; else print "n/a" }'; }
# shellcheck disable=SC2154 # R_* are set by eval in measure
{
    read -r avg_b p99_b n_b p50_b <<< "$R_lat_bawaba"
    read -r avg_u p99_u n_u p50_u <<< "$R_lat_unbound"
    echo
    pinned="not pinned"
    [ ${#ON_SERVER[@]} -gt 0 ] && pinned="servers on CPU 0, dnsperf and NSD on CPU 1"
    echo "bench-dns: $(tr -d '\n' < "$WORK/summary.txt"); $(nproc) CPUs, $pinned; $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "bawaba policy import of $RULES lines: $IMPORT_MS ms; publish $PUBLISH_MS ms; export $EXPORT_MS ms"
    printf '%-38s %14s %14s\n' metric bawaba unbound
    printf '%-38s %14s %14s\n' "load: start to first answer (ms)" "$R_load_bawaba" "$R_load_unbound"
    printf '%-38s %14s %14s\n' "load: policy loaded, bawaba log (ms)" "${BAWABA_POLICY_MS:-n/a}" "-"
    printf '%-38s %14s %14s\n' "RSS after load (MiB)" "$((R_rss_load_bawaba / 1024))" "$((R_rss_load_unbound / 1024))"
    printf '%-38s %14s %14s\n' "RSS after the runs (MiB)" "$((R_rss_end_bawaba / 1024))" "$((R_rss_end_unbound / 1024))"
    printf '%-38s %14s %14s\n' "throughput (qps, dnsperf -T 1)" "$R_qps_bawaba" "$R_qps_unbound"
    printf '%-38s %14s %14s\n' "queries completed / lost" "$R_completed_bawaba/$R_lost_bawaba" "$R_completed_unbound/$R_lost_unbound"
    printf '%-38s %14s %14s\n' "NXDOMAIN answers (blocked + absent)" "$R_nxdomain_bawaba" "$R_nxdomain_unbound"
    printf '%-38s %14s %14s\n' "latency avg at $LATENCY_QPS qps (us)" "$avg_b" "$avg_u"
    printf '%-38s %14s %14s\n' "latency p50 at $LATENCY_QPS qps (us)" "$p50_b" "$p50_u"
    printf '%-38s %14s %14s\n' "latency p99 at $LATENCY_QPS qps (us)" "$p99_b" "$p99_u"
    printf '%-38s %14s %14s\n' "latency samples" "$n_b" "$n_u"
    read -r rp99_b rmax_b <<< "$R_reload_bawaba"
    read -r rp99_u rmax_u <<< "$R_reload_unbound"
    printf '%-38s %14s %14s\n' "reload run: p99 latency (us)" "$rp99_b" "$rp99_u"
    printf '%-38s %14s %14s\n' "reload run: max latency (us)" "$rmax_b" "$rmax_u"
    printf '%-38s %14s %14s\n' "reload run: answered / lost" "$R_reload_done_bawaba/$R_reload_lost_bawaba" "$R_reload_done_unbound/$R_reload_lost_unbound"
    printf '%-38s %14s %14s\n' "server CPU per 1000 answers (ms)" \
        "$(per1000 "$R_cpu_bawaba" "$R_completed_bawaba")" "$(per1000 "$R_cpu_unbound" "$R_completed_unbound")"
    printf '%-38s %14s %14s\n' "  the same at $SAME_LOAD_QPS qps offered" \
        "$(per1000 "$R_same_cpu_bawaba" "$R_same_done_bawaba")" "$(per1000 "$R_same_cpu_unbound" "$R_same_done_unbound")"
    printf '%-38s %14s %14s\n' "  the same at $LATENCY_QPS qps offered" \
        "$(per1000 "$R_lat_cpu_bawaba" "$R_lat_done_bawaba")" "$(per1000 "$R_lat_cpu_unbound" "$R_lat_done_unbound")"
    echo "floor, a server that does no DNS work (dns-floor example), CPU per 1000 answers (ms):" \
        "$(per1000 "$R_same_cpu_floor" "$R_same_done_floor") at $SAME_LOAD_QPS qps," \
        "$(per1000 "$R_lat_cpu_floor" "$R_lat_done_floor") at $LATENCY_QPS qps"
    echo "ratio qps bawaba/unbound $(awk -v a="$R_qps_bawaba" -v b="$R_qps_unbound" 'BEGIN { printf "%.2f", a / b }')"
}
