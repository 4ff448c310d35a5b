#!/usr/bin/env bash
# Whole-system benchmark: flow collection. A generator sends IPFIX (and NetFlow v9) at increasing
# record rates on loopback to bawaba (`bawaba serve` with [flow] and [ddos]: decoding, aggregating
# per host and prefix, detecting) and to nfdump's nfcapd, one after the other at each rate, in one
# run; the highest loss-free rate of each is printed side by side.
#
#   bash scripts/bench-flow.sh                                   # the full run (about 8-12 minutes)
#   FORMATS=ipfix RATES="1000000 2000000" bash scripts/bench-flow.sh   # a quick look
#
# Settings (environment): RATES (target records/s per step, "250000 500000 1000000 1500000
# 2000000 2500000 3000000 3500000 4000000 5000000 6000000"), DURATION (seconds per step, 15: a collector that
# falls short of the rate by less than about 60,000 records/s could hide the shortfall in its
# 64 MiB socket buffer for that long), FORMATS ("ipfix v9"),
# RECORDS (records per datagram, 30), TEMPLATE_EVERY (data datagrams between template messages,
# 64), HOSTS (destination hosts in 198.18.0.0/16, 16384), BUFFER (socket receive buffer asked for,
# bytes, 33554432), LOSS_TOLERANCE (percent of records a step may lose and still count as
# loss-free, 0: not one record), BAWABA_BASELINE (true: bawaba also learns each host's and prefix's
# normal rate, as the example configuration does; false: thresholds only), COLLECTOR_CPU (1) and GENERATOR_CPU (0), NFCAPD_DIR (where
# nfcapd writes, default a directory in /dev/shm), NO_BUILD (set: use the binaries in
# target/release as they are), TOOLS (the collectors to run, "nfcapd bawaba"), KEEP_WORK (set:
# keep the work directory).
#
# What it does: installs nfdump with apt-get if missing; builds bawaba and the generator
# (crates/flow/examples/flow_gen.rs) in release; raises net.core.rmem_max to BUFFER if it is lower
# (nfcapd asks with SO_RCVBUF, which rmem_max caps; bawaba, as root, uses SO_RCVBUFFORCE) and
# restores it on exit, so both sockets get the same buffer (the kernel doubles the value asked
# for: `ss -m` shows rb 2 x BUFFER for both). Then for each format and each rate, for each
# collector (nfcapd first, then bawaba): a fresh collector pinned with `taskset -c COLLECTOR_CPU`,
#   nfcapd -b 127.0.0.1 -p PORT -w DIR -B BUFFER -t 3600        (writes nfcapd files, uncompressed)
#   bawaba serve   ([flow] socket_buffer_bytes = BUFFER; [ddos] one protected group, 198.18.0.0/16,
#                  thresholds the traffic stays under, learned baseline on unless BAWABA_BASELINE=false;
#                  no BGP peers, dry run)
# the generator pinned to GENERATOR_CPU for DURATION seconds (30 records a datagram, 1,400-byte
# IPFIX / 1,404-byte v9 datagrams, 16,384 destination hosts, 70% TCP, 25% UDP, 5% ICMP), a wait
# until the socket's receive queue is empty and the collector has caught up, the socket's drop
# counter (/proc/net/udp), then the collector stops (SIGTERM: nfcapd flushes and closes its file).
# Records received: bawaba's bawaba_flow_records_total (/metrics); nfcapd's flow count in its
# files (`nfdump -r FILE -I`, checked against the "Ident: ... Flows:" line it prints on exit).
# Loss = records the generator sent - records received; the socket drops (datagrams) say where
# they went (bawaba has no queue of its own: it decodes where the kernel put each datagram).
# Each step also reports the collector's CPU time, the kernel's loopback backlog drops
# (/proc/net/softnet_stat; a loss outside both collectors) and the catch-up time: how long after
# the generator's last datagram the collector still had datagrams in its socket (or, bawaba,
# records not yet counted); near 0 means it kept up.
# The highest loss-free rate of a collector is the generator's achieved rate at the highest step
# it lost at most LOSS_TOLERANCE percent at; after two lossy steps in a row a collector skips
# the higher ones. The last line is `ratio records/s bawaba/nfcapd <value>` (IPFIX); with v9 the
# line before it gives the NetFlow v9 ratio.
#
# Loopback only; every process it starts is stopped by PID and the work directories removed on
# any exit (trap).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD

RATES=${RATES:-"250000 500000 1000000 1500000 2000000 2500000 3000000 3500000 4000000 5000000 6000000"}
DURATION=${DURATION:-15}
FORMATS=${FORMATS:-"ipfix v9"}
RECORDS=${RECORDS:-30}
TEMPLATE_EVERY=${TEMPLATE_EVERY:-64}
HOSTS=${HOSTS:-16384}
BUFFER=${BUFFER:-33554432}
LOSS_TOLERANCE=${LOSS_TOLERANCE:-0}
BAWABA_BASELINE=${BAWABA_BASELINE:-true}
COLLECTOR_CPU=${COLLECTOR_CPU:-1}
GENERATOR_CPU=${GENERATOR_CPU:-0}
BAWABA=$ROOT/target/release/bawaba
GEN=$ROOT/target/release/examples/flow_gen

PIDS=()
WORK=$(mktemp -d /tmp/bench-flow.XXXXXX)
NFCAPD_DIR=${NFCAPD_DIR:-$(mktemp -d /dev/shm/bench-flow-nfcapd.XXXXXX)}
RMEM_MAX_SAVED=""
cleanup() {
    stop_started
    if [ -n "$RMEM_MAX_SAVED" ]; then
        sysctl -q -w net.core.rmem_max="$RMEM_MAX_SAVED" || true
    fi
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "bench-flow.sh: kept $WORK and $NFCAPD_DIR (KEEP_WORK set)" >&2
    else
        rm -rf "$WORK" "$NFCAPD_DIR"
    fi
}
trap cleanup EXIT
trap 'echo "bench-flow.sh: failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM


# ---- dependencies -------------------------------------------------------------------------------
install_packages nfdump curl
# Debian's nfdump package may start its own nfcapd service; this benchmark runs its own on other
# ports and leaves that one alone.
if [ -z "${NO_BUILD:-}" ]; then
    log "building bawaba and flow_gen (release)"
    cargo build --release -p bawaba
    cargo build --release -p bawaba-flow --example flow_gen
fi

# ---- helpers ------------------------------------------------------------------------------------
# The /proc/net/udp row of 127.0.0.1:PORT: "rx_queue_bytes drops", or nothing while unbound.
udp_row() {
    local rxq drops
    read -r rxq drops < <(awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a {split($5, q, ":"); print q[2], $NF; exit}' /proc/net/udp)
    [ -n "${rxq:-}" ] || return 0
    echo "$((16#$rxq)) $drops"
}
# Datagrams the kernel dropped from the per-CPU input backlog (loopback goes through it), all CPUs.
softnet_drops() {
    local total=0 _processed dropped _rest
    while read -r _processed dropped _rest; do
        total=$((total + 16#$dropped))
    done < /proc/net/softnet_stat
    echo "$total"
}

wait_bound() {
    local port=$1 pid=$2
    for _ in $(seq 1 200); do
        [ -n "$(udp_row "$port")" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}


# wait_drained PORT COUNT_CMD SENT: called when the generator has stopped; waits until the
# socket's receive queue is empty and COUNT_CMD (prints the records the collector has counted, or
# nothing) reached SENT or stopped moving for 300 ms; at most 60 s. Prints the catch-up time: ms
# from the call to the last moment the collector still had something to do (20 ms polls).
wait_drained() {
    local port=$1 count_cmd=$2 sent=$3 t0 now last prev="" cur rxq
    t0=$(now_ms)
    last=$t0
    while :; do
        rxq=$(udp_row "$port" | cut -d' ' -f1)
        cur=$($count_cmd)
        now=$(now_ms)
        if [ "${rxq:-0}" != 0 ] || { [ -n "$cur" ] && [ "$cur" != "$prev" ] && [ "$cur" -lt "$sent" ]; }; then
            last=$now
        fi
        if [ "${rxq:-0}" = 0 ] && { [ -z "$cur" ] || [ "$cur" -ge "$sent" ] || [ $((now - last)) -ge 300 ]; }; then
            break
        fi
        if [ $((now - t0)) -ge 60000 ]; then
            log "warning: port $port did not drain within 60 s"
            break
        fi
        prev=$cur
        sleep 0.02
    done
    echo $((last - t0))
}

# ---- socket buffers -----------------------------------------------------------------------------
current=$(sysctl -n net.core.rmem_max)
if [ "$current" -lt "$BUFFER" ]; then
    RMEM_MAX_SAVED=$current
    sysctl -q -w net.core.rmem_max="$BUFFER"
    log "net.core.rmem_max $current -> $BUFFER (restored on exit)"
fi

# ---- collectors ---------------------------------------------------------------------------------
NF_PORT=$(free_port)
BW_PORT=$(free_port)
METRICS_PORT=$(free_port STREAM)
mkdir -p "$WORK/bawaba"
cat > "$WORK/bawaba.toml" <<EOF
[store]
data_dir = "$WORK/bawaba/data"
[serve]
metrics_listen = "127.0.0.1:$METRICS_PORT"
[dns]
enabled = false
[flow]
enabled = true
listen = ["127.0.0.1:$BW_PORT"]
socket_buffer_bytes = $BUFFER
[ddos.detection]
window_ms = 1000
hold_down_ms = 30000
[ddos.detection.baseline]
enabled = $BAWABA_BASELINE
[[ddos.detection.groups]]
name = "bench"
prefixes = ["198.18.0.0/16"]
# Per host: the generator's traffic (about 10.5 packets a record over HOSTS hosts) stays under.
thresholds = { pps = 1000000, udp_pps = 500000 }
total = { pps = 1000000000 }
[ddos.mitigation]
mode = "blackhole"
dry_run = true
next_hop_v4 = "198.18.0.66"
next_hop_v6 = "2001:db8::66"
[bgp]
peers = []
EOF

COLLECTOR_PID=""
start_collector() {
    local tool=$1 step=$2
    case $tool in
        nfcapd)
            rm -rf "${NFCAPD_DIR:?}/$step" && mkdir -p "$NFCAPD_DIR/$step"
            taskset -c "$COLLECTOR_CPU" nfcapd -b 127.0.0.1 -p "$NF_PORT" -w "$NFCAPD_DIR/$step" -B "$BUFFER" -t 3600 \
                > "$WORK/$step.nfcapd.log" 2>&1 &
            COLLECTOR_PID=$!
            PIDS+=("$COLLECTOR_PID")
            wait_bound "$NF_PORT" "$COLLECTOR_PID" || { cat "$WORK/$step.nfcapd.log" >&2; exit 1; }
            ;;
        bawaba)
            taskset -c "$COLLECTOR_CPU" "$BAWABA" --config "$WORK/bawaba.toml" serve \
                > "$WORK/$step.bawaba.out" 2> "$WORK/$step.bawaba.err" &
            COLLECTOR_PID=$!
            PIDS+=("$COLLECTOR_PID")
            wait_bound "$BW_PORT" "$COLLECTOR_PID" || { cat "$WORK/$step.bawaba.err" >&2; exit 1; }

            for _ in $(seq 1 100); do
                curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > /dev/null && break
                sleep 0.05
            done
            ;;
    esac
}

stop_collector() {
    kill -TERM "$COLLECTOR_PID" 2>/dev/null || true
    wait "$COLLECTOR_PID" 2>/dev/null || true
    local keep=() pid
    for pid in "${PIDS[@]}"; do
        [ "$pid" = "$COLLECTOR_PID" ] || keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}

bawaba_records() {
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk '$1 == "bawaba_flow_records_total" {print $2}'
}
no_count() { :; }

# run_step FORMAT TOOL RATE: one step; writes "achieved sent received lost socket_drops
# cpu_seconds backlog_drops rcvbuf catchup_ms" to $WORK/FORMAT-TOOL-RATE.result.
run_step() {
    local format=$1 tool=$2 rate=$3 step="$1-$2-$3"
    local port gen=$WORK/$step.gen cpu0 cpu1 soft0 soft1 received drops rcvbuf
    start_collector "$tool" "$step"
    if [ "$tool" = nfcapd ]; then port=$NF_PORT; else port=$BW_PORT; fi
    rcvbuf=$(ss -Huamn "sport = :$port" | grep -o 'rb[0-9]*' | head -1 | tr -d rb)
    cpu0=$(cpu_ticks "$COLLECTOR_PID")
    soft0=$(softnet_drops)
    taskset -c "$GENERATOR_CPU" "$GEN" --target "127.0.0.1:$port" --format "$format" --rate "$rate" \
        --duration "$DURATION" --records "$RECORDS" --template-every "$TEMPLATE_EVERY" --hosts "$HOSTS" > "$gen"
    local sent catchup
    sent=$(field records "$gen")
    if [ "$tool" = bawaba ]; then
        catchup=$(wait_drained "$port" bawaba_records "$sent")
        curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" > "$WORK/$step.metrics"
    else
        catchup=$(wait_drained "$port" no_count "$sent")
        sleep 0.5
    fi
    soft1=$(softnet_drops)
    cpu1=$(cpu_ticks "$COLLECTOR_PID")
    drops=$(udp_row "$port" | cut -d' ' -f2)
    stop_collector
    if [ "$tool" = bawaba ]; then
        received=$(field bawaba_flow_records_total "$WORK/$step.metrics")
        local errors
        errors=$(awk '/^bawaba_flow_decode_errors_total/ {s += $2} END {print s + 0}' "$WORK/$step.metrics")
        [ "$errors" = 0 ] || log "warning: bawaba counted $errors decode errors"
    else
        received=0
        local f n
        for f in "$NFCAPD_DIR/$step"/nfcapd.*; do
            [ -e "$f" ] || continue
            n=$(nfdump -r "$f" -I | awk '$1 == "Flows:" {print $2; exit}')
            received=$((received + ${n:-0}))
        done
        local ident
        ident=$(grep -o "Ident: .* Flows: [0-9]*" "$WORK/$step.nfcapd.log" | grep -o '[0-9]*$' | tail -1)
        [ "${ident:-}" = "$received" ] || log "warning: nfcapd said Flows: ${ident:-?}, its files hold $received"
        rm -rf "${NFCAPD_DIR:?}/$step"
    fi
    local achieved
    achieved=$(field records_per_second "$gen")
    echo "$achieved $sent $received $((sent - received)) $drops" \
        "$(awk -v t="$((cpu1 - cpu0))" -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}')" "$((soft1 - soft0))" "$rcvbuf" "$catchup" \
        > "$WORK/$step.result"
}

# ---- runs -----------------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
read -r -a TOOLS <<< "${TOOLS:-nfcapd bawaba}"
declare -A ROWS BEST BEST01 LOSSY SKIP
for format in $FORMATS; do
    for tool in "${TOOLS[@]}"; do
        BEST[$format.$tool]=0 BEST01[$format.$tool]=0 LOSSY[$format.$tool]=0 SKIP[$format.$tool]=""
    done
    for rate in $RATES; do
        for tool in "${TOOLS[@]}"; do
            if [ -n "${SKIP[$format.$tool]}" ]; then
                ROWS[$format.$tool.$rate]="-"
                continue
            fi
            run_step "$format" "$tool" "$rate"
            read -r achieved sent received lost drops cpu backlog rcvbuf catchup < "$WORK/$format-$tool-$rate.result"
            pct=$(awk -v l="$lost" -v s="$sent" 'BEGIN {printf "%.3f", s ? 100 * l / s : 0}')
            ROWS[$format.$tool.$rate]="$achieved $sent $received $lost $pct $drops $cpu $backlog $catchup"
            log "$format $tool target $rate/s: sent $sent at $achieved/s, received $received, lost $lost ($pct%)," \
                "socket drops $drops datagrams; CPU $cpu s; backlog drops $backlog; rcvbuf $rcvbuf;" \
                "caught up $catchup ms after the generator stopped"
            if awk -v p="$pct" -v t="$LOSS_TOLERANCE" 'BEGIN {exit !(p <= t)}'; then
                BEST[$format.$tool]=$achieved
                LOSSY[$format.$tool]=0
            else
                LOSSY[$format.$tool]=$((LOSSY[$format.$tool] + 1))
                [ "${LOSSY[$format.$tool]}" -lt 2 ] || SKIP[$format.$tool]=1
            fi
            if awk -v p="$pct" 'BEGIN {exit !(p < 0.1)}'; then
                BEST01[$format.$tool]=$achieved
            fi
            sleep 1
        done
    done
done

# ---- report -----------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
mega() { awk -v r="$1" 'BEGIN { printf "%.2f M", r / 1e6 }'; }
top_rate=$(echo "$RATES" | tr ' ' '\n' | sort -n | tail -1)
{
    echo
    echo "bench-flow: $(nproc) CPUs; collectors on CPU $COLLECTOR_CPU, generator on CPU $GENERATOR_CPU; $DURATION s a step;" \
        "$RECORDS records a datagram, templates every $TEMPLATE_EVERY datagrams, $HOSTS destination hosts;" \
        "socket buffer asked $BUFFER bytes; $(date -u '+%Y-%m-%d %H:%M UTC'); load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "nfcapd (nfdump $(dpkg-query -W -f='${Version}' nfdump)) writing to $NFCAPD_DIR (uncompressed);" \
        "bawaba $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') serve with [flow] + [ddos] (dry run, baseline $BAWABA_BASELINE)"
    echo "loss-free: at most $LOSS_TOLERANCE% of the records lost; lost = sent - received"
    for format in $FORMATS; do
        echo
        echo "$format:"
        printf '%-10s %-7s %12s %11s %11s %9s %8s %12s %7s %8s %10s\n' "target/s" tool "achieved/s" sent received lost "lost%" \
            "sock drops" "CPU s" backlog "catch-up"
        for rate in $RATES; do
            for tool in "${TOOLS[@]}"; do
                row=${ROWS[$format.$tool.$rate]}
                if [ "$row" = "-" ]; then
                    printf '%-10s %-7s %12s\n' "$rate" "$tool" "(skipped: lossy below)"
                else
                    read -r achieved sent received lost pct drops cpu backlog catchup <<< "$row"
                    printf '%-10s %-7s %12s %11s %11s %9s %8s %12s %7s %8s %10s\n' "$rate" "$tool" "$achieved" "$sent" "$received" \
                        "$lost" "$pct" "$drops" "$cpu" "$backlog" "$catchup ms"
                fi
            done
        done
        for tool in "${TOOLS[@]}"; do
            note=""
            row=${ROWS[$format.$tool.$top_rate]:-}
            if [ -n "$row" ] && [ "$row" != "-" ] && [ "${BEST[$format.$tool]}" = "$(echo "$row" | cut -d' ' -f1)" ]; then
                note=" (the highest step: at least this)"
            fi
            echo "highest loss-free rate, $format, $tool: $(mega "${BEST[$format.$tool]}") records/s$note;" \
                "below 0.1% loss: $(mega "${BEST01[$format.$tool]}") records/s"
        done
    done
    for format in $FORMATS; do
        [ "$format" = ipfix ] && continue
        echo "ratio records/s bawaba/nfcapd ($format) $(ratio "${BEST[$format.bawaba]:-0}" "${BEST[$format.nfcapd]:-0}")"
    done
    if [[ " $FORMATS " == *" ipfix "* ]]; then
        echo "ratio records/s bawaba/nfcapd $(ratio "${BEST[ipfix.bawaba]:-0}" "${BEST[ipfix.nfcapd]:-0}")"
    fi
}
