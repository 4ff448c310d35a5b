#!/usr/bin/env bash
# Whole-system benchmark: time to mitigate a flood. The same attack, exported as IPFIX by the
# same generator, is sent to FastNetMon (Debian's fastnetmon, GoBGP integration) and to bawaba
# (`bawaba serve` with [flow], [ddos] and a BGP peer); for each, the time from the first attack
# datagram to the blackhole route in a GoBGP RIB, and from the last attack datagram to its
# withdrawal, over several runs; medians are printed side by side.
#
#   bash scripts/bench-ddos.sh                 # the full run (about 4 minutes)
#   RUNS=2 bash scripts/bench-ddos.sh          # a quick look
#
# Settings (environment): RUNS (attacks per configuration, 5), FORMAT (ipfix; v9 or v5 also
# work with both), WINDOWS_MS (bawaba's detection windows to measure, one configuration each,
# "200 1000"; the ratio line uses the first), ATTACK_PPS (packets/s of the flood, 120000; 1,000
# records/s, 10 a datagram, each standing for ATTACK_PPS/1000 DNS answers of 1,400 bytes from
# source port 53 to 198.18.5.5), THRESHOLD_PPS (per-host packets/s threshold of both, 50000),
# BACKGROUND_RECORDS (records/s of background traffic to 4,096 hosts of 198.18.0.0/16, 2000),
# ATTACK_SECONDS (6), HOLD_SECONDS (bawaba's hold_down and FastNetMon's ban_time, 2),
# POLL_MS (sleep between two RIB polls, 20), COOLDOWN_SECONDS (pause between attacks, 4),
# NO_BUILD (set: use the binaries in target/release as they are), KEEP_WORK (set: keep the
# work directory with configurations and logs).
#
# What it does: installs fastnetmon, gobgpd and curl with apt-get if missing; builds bawaba and
# the generator (crates/flow/examples/flow_gen.rs) in release. Then, one system at a time:
# - FastNetMon 1.2.4, run in the foreground with our configuration file (netflow plugin on
#   127.0.0.1, netflow_sampling_ratio 1; threshold_pps, ban_for_pps; average_calculation_time 1
#   and speed_calculation_delay 1, its fastest; ban_time HOLD_SECONDS with
#   unban_only_if_attack_finished; gobgp = on, gobgp_announce_host with next hop 198.18.0.66 and
#   community 65535:666; usage reports, API, Prometheus and connection tracking off). Its GoBGP
#   client talks to a gobgpd on localhost:50051 (fixed in FastNetMon), which holds the route in
#   its global RIB. FastNetMon needs /var/log/fastnetmon_attacks: created if missing and then
#   removed again; the attack detail files it writes there for 198.18.5.5 are removed.
# - bawaba, for each window in WINDOWS_MS: `bawaba serve` ([ddos.detection] window_ms = W,
#   hold_down_ms = HOLD_SECONDS * 1000, baseline off; one group, 198.18.0.0/16, thresholds
#   { pps = THRESHOLD_PPS } and every other check, the DNS amplification vector's among them, off,
#   so both tools judge the same number; [ddos.mitigation] mode blackhole, not dry run, next hop
#   198.18.0.66)
#   peering over BGP with its own gobgpd (another API port), whose global RIB is polled.
# Both collectors and the generators run unpinned. For each system: background traffic for
# the whole time, then RUNS times: the attack generator for ATTACK_SECONDS (it prints the Unix
# time of its first and last datagram), `gobgp global rib` polled every POLL_MS ms until
# 198.18.5.5/32 appears (time to mitigate) and, after the attack, until it is gone (time to
# withdraw), then COOLDOWN_SECONDS of background only. A poll's time is when the `gobgp` call
# that saw the change returned (each call takes about 10 ms), so the times are upper bounds
# with about 30 ms of resolution. Each attack starts at another phase of the wall-clock second
# (see align_phase), so the runs sample the detection cycles evenly. A route that is not there
# 5 s after the attack ended fails the script. The last line is
# `ratio mitigate-time bawaba/fastnetmon <value>` (medians; bawaba with the first window of
# WINDOWS_MS).
#
# Loopback only. Every process it starts is stopped by PID, and the work directory removed, on
# any exit (trap).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD

RUNS=${RUNS:-5}
FORMAT=${FORMAT:-ipfix}
WINDOWS_MS=${WINDOWS_MS:-"200 1000"}
ATTACK_PPS=${ATTACK_PPS:-120000}
THRESHOLD_PPS=${THRESHOLD_PPS:-50000}
BACKGROUND_RECORDS=${BACKGROUND_RECORDS:-2000}
ATTACK_SECONDS=${ATTACK_SECONDS:-6}
HOLD_SECONDS=${HOLD_SECONDS:-2}
POLL_MS=${POLL_MS:-20}
COOLDOWN_SECONDS=${COOLDOWN_SECONDS:-4}
BAWABA=$ROOT/target/release/bawaba
GEN=$ROOT/target/release/examples/flow_gen
TARGET=198.18.5.5
ATTACKS_DIR=/var/log/fastnetmon_attacks

PIDS=()
WORK=$(mktemp -d /tmp/bench-ddos.XXXXXX)
CREATED_ATTACKS_DIR=""
cleanup() {
    stop_started
    if [ -n "$CREATED_ATTACKS_DIR" ]; then
        rm -rf "$ATTACKS_DIR"
    elif [ -d "$ATTACKS_DIR" ]; then
        find "$ATTACKS_DIR" -maxdepth 1 -name "${TARGET}_*" -newer "$WORK/started" -delete 2>/dev/null || true
    fi
    remove_work bench-ddos.sh
}
trap cleanup EXIT
trap 'echo "bench-ddos.sh: failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM
touch "$WORK/started"


# ---- dependencies -------------------------------------------------------------------------------
install_packages fastnetmon gobgpd curl
# Debian's package enables a fastnetmon service; this benchmark runs its own, and a running
# service would hold the ports we need.
if pgrep -x fastnetmon > /dev/null; then
    echo "bench-ddos.sh: a fastnetmon is already running (pid $(pgrep -x fastnetmon | tr '\n' ' ')); stop it first" >&2
    exit 1
fi
if [ -z "${NO_BUILD:-}" ]; then
    log "building bawaba and flow_gen (release)"
    cargo build --release -p bawaba
    cargo build --release -p bawaba-flow --example flow_gen
fi

# ---- helpers ------------------------------------------------------------------------------------
port_in_use() { ss -Htln "sport = :$1" | grep -q .; }
forget_pid() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do
        [ "$pid" = "$1" ] || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    local _
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget_pid "$1"
}

# rib API: the IPv4 global RIB of the gobgpd on API port.
rib() { gobgp -p "$1" global rib -a ipv4 2>/dev/null || true; }

# wait_rib API present|absent DEADLINE_MS: polls until the target's /32 is (or is no longer) in
# the RIB; prints the time (Unix ms) the poll that saw it returned, or nothing at the deadline.
wait_rib() {
    local api=$1 want=$2 deadline=$3 out t
    while :; do
        out=$(rib "$api")
        t=$(now_ms)
        if [[ "$out" == *"$TARGET/32"* ]]; then
            if [ "$want" = present ]; then
                echo "$t"
                echo "$out" > "$WORK/last-route.txt"
                return
            fi
        elif [ "$want" = absent ]; then
            echo "$t"
            return
        fi
        [ "$t" -lt "$deadline" ] || return 0
        sleep "$(awk -v ms="$POLL_MS" 'BEGIN {printf "%.3f", ms / 1000}')"
    done
}

start_gobgpd() {
    local name=$1 api=$2 conf=$WORK/$1.gobgpd.toml
    cat > "$conf"
    gobgpd -f "$conf" --api-hosts "127.0.0.1:$api" --pprof-disable > "$WORK/$name.gobgpd.log" 2>&1 &
    PIDS+=($!)
    GOBGPD_PID=$!
    local _
    for _ in $(seq 1 100); do
        gobgp -p "$api" global > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "gobgpd ($name) did not come up:" >&2
    cat "$WORK/$name.gobgpd.log" >&2
    exit 1
}

# Detection runs in cycles: bawaba's windows are aligned to the wall clock (multiples of
# window_ms), FastNetMon recomputes its rates once a second. Attacks that all started at the same
# phase of the cycle would measure one point of it; run N starts at ms (PHASE0 + (N-1) * 1200 /
# RUNS) mod 1000 of a wall-clock second, which spreads the runs evenly over both a 1,000 ms and a
# 200 ms cycle (for 5 runs: 0, 240, 480, 720, 960 ms, i.e. 0, 40, 80, 120, 160 ms of 200).
PHASE0=$((RANDOM % 1000))
align_phase() {
    local target now
    target=$(((PHASE0 + ($1 - 1) * 1200 / RUNS) % 1000))
    now=$(now_ms)
    sleep "$(awk -v w="$(((target - now % 1000 + 1000) % 1000))" 'BEGIN {printf "%.3f", w / 1000}')"
}

BACKGROUND_PID=""
start_background() {
    "$GEN" --target "127.0.0.1:$1" --format "$FORMAT" --rate "$BACKGROUND_RECORDS" --duration 100000 --domain 1 \
        --hosts 4096 --template-every 20 > "$WORK/background-$1.out" &
    BACKGROUND_PID=$!
    PIDS+=("$BACKGROUND_PID")
}

# ---- one system: RUNS attacks ----------------------------------------------------------------------
declare -A MITIGATE WITHDRAW
# attack_runs NAME FLOW_PORT API_PORT
attack_runs() {
    local name=$1 port=$2 api=$3 run gen start end seen gone
    # Background traffic first, long enough for the collector to know the exporter's templates.
    start_background "$port"
    sleep 3
    if [[ "$(rib "$api")" == *"$TARGET/32"* ]]; then
        echo "$name: $TARGET/32 is in the RIB before any attack" >&2
        exit 1
    fi
    local per_record=$((ATTACK_PPS / 1000))
    for run in $(seq 1 "$RUNS"); do
        align_phase "$run"
        gen=$WORK/$name-attack-$run.out
        "$GEN" --target "127.0.0.1:$port" --format "$FORMAT" --rate 1000 --records 10 --duration "$ATTACK_SECONDS" \
            --domain 2 --template-every 20 --dst "$TARGET/32" --proto udp --src-port 53 --packets "$per_record" \
            --packet-bytes 1400 > "$gen" &
        local attack_pid=$!
        PIDS+=("$attack_pid")
        seen=$(wait_rib "$api" present $(($(now_ms) + ATTACK_SECONDS * 1000 + 5000)))
        wait "$attack_pid" || { echo "$name: the attack generator failed" >&2; exit 1; }
        forget_pid "$attack_pid"
        start=$(field start_unix_ms "$gen")
        end=$(field end_unix_ms "$gen")
        if [ -z "$seen" ]; then
            echo "$name run $run: no route for $TARGET/32 within 5 s after the attack; RIB:" >&2
            rib "$api" >&2
            exit 1
        fi
        [ "$seen" -le "$end" ] || log "warning: $name run $run: the route came after the attack ended"
        grep -q "198.18.0.66" "$WORK/last-route.txt" || log "warning: $name: unexpected route: $(cat "$WORK/last-route.txt")"
        gone=$(wait_rib "$api" absent $(($(now_ms) + 120000)))
        [ -n "$gone" ] || { echo "$name run $run: $TARGET/32 not withdrawn 120 s after the attack" >&2; exit 1; }
        MITIGATE[$name]="${MITIGATE[$name]:-} $((seen - start))"
        WITHDRAW[$name]="${WITHDRAW[$name]:-} $((gone - end))"
        log "$name run $run/$RUNS: route $((seen - start)) ms after the attack started, withdrawn $((gone - end)) ms after it ended"
        sleep "$COOLDOWN_SECONDS"
    done
    stop_pid "$BACKGROUND_PID"
}

# ---- FastNetMon ---------------------------------------------------------------------------------------
if port_in_use 50051; then
    echo "bench-ddos.sh: 127.0.0.1:50051 is taken; FastNetMon's GoBGP client needs a gobgpd there" >&2
    exit 1
fi
if [ ! -d "$ATTACKS_DIR" ]; then
    mkdir -p "$ATTACKS_DIR"
    CREATED_ATTACKS_DIR=1
fi
FNM_PORT=$(free_port)
echo "198.18.0.0/16" > "$WORK/networks_list"
: > "$WORK/networks_whitelist"
printf '#!/bin/sh\nexit 0\n' > "$WORK/notify.sh"
chmod +x "$WORK/notify.sh"
cat > "$WORK/fastnetmon.conf" <<EOF
logging_level = info
logging_local_syslog_logging = off
logging_remote_syslog_logging = off
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = off
process_incoming_traffic = on
process_outgoing_traffic = off
ban_details_records_count = 20
ban_time = $HOLD_SECONDS
unban_only_if_attack_finished = on
networks_list_path = $WORK/networks_list
white_list_path = $WORK/networks_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = off
ban_for_flows = off
threshold_pps = $THRESHOLD_PPS
mirror_afpacket = off
mirror_afxdp = off
mirror_netmap = off
pcap = off
sflow = off
netflow = on
netflow_port = $FNM_PORT
netflow_host = 127.0.0.1
netflow_sampling_ratio = 1
average_calculation_time = 1
speed_calculation_delay = 1
interfaces =
notify_script_path = $WORK/notify.sh
collect_attack_pcap_dumps = off
redis_enabled = off
mongodb_enabled = off
exabgp = off
gobgp = on
gobgp_next_hop = 198.18.0.66
gobgp_announce_host = on
gobgp_announce_whole_subnet = off
gobgp_community_host = 65535:666
gobgp_community_subnet = 65535:667
gobgp_announce_host_ipv6 = off
gobgp_announce_whole_subnet_ipv6 = off
influxdb = off
graphite = off
monitor_local_ip_addresses = off
pid_path = $WORK/fastnetmon.pid
cli_stats_file_path = $WORK/fastnetmon.dat
cli_stats_ipv6_file_path = $WORK/fastnetmon_ipv6.dat
enable_api = off
prometheus = off
EOF
start_gobgpd fastnetmon 50051 <<EOF
[global.config]
  as = 65001
  router-id = "198.18.0.2"
  port = -1
EOF
FNM_GOBGPD=$GOBGPD_PID
fastnetmon --configuration_file "$WORK/fastnetmon.conf" --log_file "$WORK/fastnetmon.log" --disable_pid_logic \
    > "$WORK/fastnetmon.out" 2>&1 &
FNM_PID=$!
PIDS+=("$FNM_PID")
for _ in $(seq 1 100); do
    grep -q "netflow plugin will listen" "$WORK/fastnetmon.log" 2>/dev/null && break
    kill -0 "$FNM_PID" 2>/dev/null || { cat "$WORK/fastnetmon.out" "$WORK/fastnetmon.log" >&2; exit 1; }
    sleep 0.1
done
log "fastnetmon $(dpkg-query -W -f='${Version}' fastnetmon) listening on 127.0.0.1:$FNM_PORT, GoBGP API 50051"
attack_runs fastnetmon "$FNM_PORT" 50051
stop_pid "$FNM_PID"
stop_pid "$FNM_GOBGPD"

# ---- bawaba -----------------------------------------------------------------------------------------
for window in $WINDOWS_MS; do
    name=bawaba-$window
    BGP_PORT=$(free_port STREAM)
    API_PORT=$(free_port STREAM)
    FLOW_PORT=$(free_port)
    METRICS_PORT=$(free_port STREAM)
    start_gobgpd "$name" "$API_PORT" <<EOF
[global.config]
  as = 65001
  router-id = "198.18.0.2"
  port = $BGP_PORT
  local-address-list = ["127.0.0.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
    GOBGPD=$GOBGPD_PID
    cat > "$WORK/$name.toml" <<EOF
[store]
data_dir = "$WORK/$name/data"
[serve]
metrics_listen = "127.0.0.1:$METRICS_PORT"
[dns]
enabled = false
[flow]
enabled = true
listen = ["127.0.0.1:$FLOW_PORT"]
[ddos.detection]
window_ms = $window
hold_down_ms = $((HOLD_SECONDS * 1000))
[ddos.detection.baseline]
enabled = false
[[ddos.detection.groups]]
name = "bench"
prefixes = ["198.18.0.0/16"]
# Packets per second only, as FastNetMon's ban_for_pps: every other check off.
thresholds = { pps = $THRESHOLD_PPS, bps = 0, flows = 0, udp_pps = 0, syn_pps = 0, icmp_pps = 0, fragment_pps = 0, amplification_pps = 0 }
[ddos.mitigation]
mode = "blackhole"
dry_run = false
next_hop_v4 = "198.18.0.66"
next_hop_v6 = "2001:db8::66"
[bgp]
local_as = 65000
router_id = "198.18.0.1"
peers = [{ address = "127.0.0.1:$BGP_PORT", remote_as = 65001, hold_time = 9, flowspec = false }]
EOF
    "$BAWABA" --config "$WORK/$name.toml" serve > "$WORK/$name.out" 2> "$WORK/$name.err" &
    BAWABA_PID=$!
    PIDS+=("$BAWABA_PID")
    for _ in $(seq 1 150); do
        gobgp -p "$API_PORT" neighbor 2>/dev/null | grep -q Establ && break
        kill -0 "$BAWABA_PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        sleep 0.1
    done
    gobgp -p "$API_PORT" neighbor | grep -q Establ || { echo "$name: no BGP session" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    log "$name: window $window ms, listening on 127.0.0.1:$FLOW_PORT, BGP session with gobgpd (API $API_PORT) up"
    attack_runs "$name" "$FLOW_PORT" "$API_PORT"
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/$name.metrics" || true
    stop_pid "$BAWABA_PID"
    stop_pid "$GOBGPD"
done

# ---- report -----------------------------------------------------------------------------------------
commas() { echo "$1" | sed 's/^ //; s/ /, /g'; }
SYSTEMS=(fastnetmon)
for window in $WINDOWS_MS; do SYSTEMS+=("bawaba-$window"); done
first=$(echo "$WINDOWS_MS" | awk '{print $1}')
{
    echo
    echo "bench-ddos: $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC'); $FORMAT; attack $ATTACK_PPS packets/s (1,000 records/s," \
        "$((ATTACK_PPS / 1000)) packets each) from source port 53 to $TARGET for $ATTACK_SECONDS s;" \
        "threshold $THRESHOLD_PPS packets/s per host; background $BACKGROUND_RECORDS records/s to 4,096 hosts;" \
        "hold $HOLD_SECONDS s; $RUNS runs; RIB polled every $POLL_MS ms (+ about 10 ms a gobgp call)"
    echo "fastnetmon $(dpkg-query -W -f='${Version}' fastnetmon) (average_calculation_time 1, speed_calculation_delay 1," \
        "ban_time $HOLD_SECONDS) -> gobgpd API; bawaba $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "(window_ms as named, hold_down_ms $((HOLD_SECONDS * 1000))) -> BGP -> gobgpd $(dpkg-query -W -f='${Version}' gobgpd)"
    printf '%-14s %22s %40s %22s %40s\n' system "mitigate, median ms" "runs" "withdraw, median ms" "runs"
    for s in "${SYSTEMS[@]}"; do
        printf '%-14s %22s %40s %22s %40s\n' "$s" "$(median "${MITIGATE[$s]}")" "$(commas "${MITIGATE[$s]}")" \
            "$(median "${WITHDRAW[$s]}")" "$(commas "${WITHDRAW[$s]}")"
    done
    fnm=$(median "${MITIGATE[fastnetmon]}")
    for s in "${SYSTEMS[@]}"; do
        [ "$s" = fastnetmon ] && continue
        echo "ratio withdraw-time $s/fastnetmon $(awk -v a="$(median "${WITHDRAW[$s]}")" -v b="$(median "${WITHDRAW[fastnetmon]}")" 'BEGIN {printf "%.2f", a / b}')"
        [ "$s" = "bawaba-$first" ] && continue
        echo "ratio mitigate-time $s/fastnetmon $(awk -v a="$(median "${MITIGATE[$s]}")" -v b="$fnm" 'BEGIN {printf "%.2f", a / b}')"
    done
    echo "the ratio below: bawaba with window_ms $first"
    echo "ratio mitigate-time bawaba/fastnetmon $(awk -v a="$(median "${MITIGATE[bawaba-$first]}")" -v b="$fnm" 'BEGIN {printf "%.2f", a / b}')"
}
