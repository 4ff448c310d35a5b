#!/usr/bin/env bash
# Inline throughput: iperf3 through a routed gateway namespace, without bawaba and with
# `bawaba serve` enforcing inline (NFQUEUE, [engine] mode = "nfqueue"), and a control (connection
# tracking turned on in the gateway by one rule, nothing queued), PASSES times each, in an order
# that rotates from pass to pass; prints the medians and, last,
# `ratio throughput bawaba/baseline <value>`.
# The issue's target: >= 0.90 (only the first packets of each connection are queued).
#
# Usage (as root): scripts/bench-inline.sh
# Overrides: PASSES (3), SECONDS_PER_RUN (10), STREAMS (iperf3 -P, 4), BAWABA (the binary; default
# target/release/bawaba, built if missing), KEEP_WORK=1, OFFLOAD (on: the veth defaults, TSO, GSO
# and GRO, as on a router's real NICs; off, the default: every packet MTU-sized).
# Only 198.18.0.0/15 addresses inside namespaces this script creates and removes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
PASSES=${PASSES:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
STREAMS=${STREAMS:-4}
BAWABA=${BAWABA:-$ROOT/target/release/bawaba}
export PFX=bbi$$
G=$PFX-gw; C=$PFX-cli; S=$PFX-srv
WORK=$(mktemp -d /tmp/bench-inline.XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    bash scripts/netns/topology.sh down >/dev/null 2>&1 || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { echo "bench-inline: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { echo "bench-inline.sh: needs root (network namespaces)" >&2; exit 1; }
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
command -v iptables >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null
command -v conntrack >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq conntrack >/dev/null
if [ ! -x "$BAWABA" ]; then
    log "building bawaba (release)"
    cargo build --release -p bawaba
fi

OFFLOAD=${OFFLOAD:-off}
OFFLOAD=$OFFLOAD bash scripts/netns/topology.sh up route >/dev/null
ip netns exec "$S" iperf3 -s -B 198.18.2.2 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5

# A policy with a rule, so the engine judges every connection against a real ruleset.
cat >"$WORK/bawaba.toml" <<EOF
[store]
data_dir = "$WORK/data"
[serve]
metrics_listen = "127.0.0.1:9155"
[dns]
enabled = false
[engine]
mode = "nfqueue"
queue = 9
EOF
b() { "$BAWABA" --config "$WORK/bawaba.toml" "$@" >/dev/null; }
b init
b --actor alice order add --authority Court --reference B-1 --category court-order --expires +30d \
    --summary bench --appeal-contact a@b.example
b --actor alice rule add --order 1 --action reset blocked.test
b --actor bob order approve 1
b --actor bob policy publish

run_iperf() {  # prints Gbit/s received
    ip netns exec "$C" iperf3 -c 198.18.2.2 -t "$SECONDS_PER_RUN" -P "$STREAMS" -J 2>/dev/null |
        python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

BASE=(); INLINE=(); TRACKED=()
baseline() {
    BASE+=("$(run_iperf)")
    log "pass $pass: baseline ${BASE[-1]} Gbit/s"
}
# Control: the gateway's connection tracking alone (one rule that needs it, nothing queued), the
# kernel cost any connmark-based inline design pays before bawaba sees a packet.
tracked() {
    ip netns exec "$G" iptables -A FORWARD -m conntrack --ctstate INVALID -j DROP
    TRACKED+=("$(run_iperf)")
    ip netns exec "$G" iptables -D FORWARD -m conntrack --ctstate INVALID -j DROP
    log "pass $pass: conntrack only ${TRACKED[-1]} Gbit/s"
}
inline() {
    ip netns exec "$G" "$BAWABA" --config "$WORK/bawaba.toml" serve >"$WORK/serve.out" 2>"$WORK/serve.log" &
    SERVE=$!
    PIDS+=("$SERVE")
    for _ in $(seq 100); do grep -q "engine inline" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
    grep -q "engine inline" "$WORK/serve.out" || { cat "$WORK/serve.log" >&2; exit 1; }
    C0=$(cpu_ticks "$SERVE")
    INLINE+=("$(run_iperf)")
    SERVE_CPU=$(( ($(cpu_ticks "$SERVE") - C0) * 1000 / TICKS ))
    QUEUED=$(ip netns exec "$G" curl -s http://127.0.0.1:9155/metrics | awk '/^bawaba_engine_packets_total/ {s+=$2} END {print s+0}')
    kill -TERM "$SERVE"; wait "$SERVE" 2>/dev/null || true
    log "pass $pass: inline ${INLINE[-1]} Gbit/s ($QUEUED packets went through bawaba, which used $SERVE_CPU ms of CPU)"
}
# Each pass runs the three in another order (B C I, C I B, I B C, ...), so that none of them
# always runs first or last in a pass.
ORDER=(baseline tracked inline)
for pass in $(seq "$PASSES"); do
    for i in 0 1 2; do
        "${ORDER[$(( (i + pass - 1) % 3 ))]}"
    done
done

MB=$(median "${BASE[@]}"); MI=$(median "${INLINE[@]}"); MT=$(median "${TRACKED[@]}")
echo "iperf3 -P $STREAMS, ${SECONDS_PER_RUN}s, $PASSES passes, veth offloads $OFFLOAD; runs: baseline ${BASE[*]}; conntrack only ${TRACKED[*]}; inline ${INLINE[*]}"
printf '%-34s %10s\n' "median baseline (Gbit/s)" "$MB" "median conntrack only (Gbit/s)" "$MT" \
    "median bawaba inline (Gbit/s)" "$MI"
echo "ratio throughput conntrack-only/baseline $(python3 -c "print('%.3f' % ($MT / $MB))")"
echo "ratio throughput bawaba/conntrack-only $(python3 -c "print('%.3f' % ($MI / $MT))")"
echo "ratio throughput bawaba/baseline $(python3 -c "print('%.3f' % ($MI / $MB))")"
