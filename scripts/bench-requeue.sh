#!/usr/bin/env bash
# How long the inline back end takes to mark connections for another look after a reload changes
# their verdict: the `conntrack -U` tool, one process per connection (what bawaba ran before),
# against bawaba's ctnetlink updates (`crates/engine/examples/set-marks.rs`, the code the inline
# loop runs), on the same connections, in one run.
#
#   sudo bash scripts/bench-requeue.sh                # 2,000 connections, 3 passes
#   CONNECTIONS=20000 PASSES=1 bash scripts/bench-requeue.sh
#
# Settings (environment): CONNECTIONS (2000), PASSES (3), NO_BUILD (set: use the example binary
# as built).
#
# What it does: installs conntrack with apt-get if missing; creates a network namespace of its own
# (deleted on any exit) and loads CONNECTIONS established TCP connections into its conntrack table
# (`conntrack -R`, 198.18.0.0/15 addresses, mark 0x100); then, each pass, sets mark 0x300 under mask
# 0xf00 on all of them with each tool in turn (the order alternating), checks that every one
# carries the new mark, and loads the table afresh. Needs root.
# The last line is `ratio seconds bawaba/conntrack-U <value>`.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-2000}
PASSES=${PASSES:-3}
SET_MARKS=target/release/examples/set-marks
NS=bwrq-$$
WORK=$(mktemp -d /tmp/bench-requeue.XXXXXX)
cleanup() {
    ip netns del "$NS" 2>/dev/null || true
    remove_work bench-requeue.sh
}
trap cleanup EXIT
trap 'echo "bench-requeue.sh: failed at line $LINENO" >&2' ERR

install_packages conntrack iproute2
if [ -z "${NO_BUILD:-}" ] || [ ! -x "$SET_MARKS" ]; then
    log "building the set-marks example (release)"
    cargo build --release -q -p bawaba-engine --example set-marks
fi

marked() { ip netns exec "$NS" conntrack -L 2> /dev/null | grep -c " mark=$1 " || true; }
reset_marks() {
    ip netns exec "$NS" conntrack -F 2> /dev/null
    ip netns exec "$NS" conntrack -R "$WORK/load.txt" 2> /dev/null
}

ip netns add "$NS"
# Connection i: 198.18.(i / 250).(i % 250 + 1):(10000 + i % 50000) to 198.19.0.1:443.
awk -v n="$CONNECTIONS" 'BEGIN {
    for (i = 0; i < n; i++) {
        c = sprintf("198.18.%d.%d", int(i / 250) % 256, i % 250 + 1); p = 10000 + i % 50000
        printf "-I -p tcp -s %s -d 198.19.0.1 --sport %d --dport 443 -t 3600 --state ESTABLISHED --mark 0x100\n", c, p > "'"$WORK"'/load.txt"
        printf "-f ipv4 -p tcp -s %s -d 198.19.0.1 --sport %d --dport 443\n", c, p > "'"$WORK"'/filters.txt"
        printf "tcp %s %d 198.19.0.1 443\n", c, p > "'"$WORK"'/connections.txt"
    }
}'
reset_marks
loaded=$(ip netns exec "$NS" conntrack -C)
[ "$loaded" -eq "$CONNECTIONS" ] || { echo "loaded $loaded connections, not $CONNECTIONS" >&2; exit 1; }
log "$CONNECTIONS connections in namespace $NS"

run_tool() {
    local t0 t1
    t0=$(now_ms)
    if [ "$1" = conntrack ]; then
        while read -r filter; do
            # shellcheck disable=SC2086 # the filter is a list of options
            ip netns exec "$NS" conntrack -U $filter --mark 0x300/0xf00 > /dev/null 2>&1
        done < "$WORK/filters.txt"
    else
        ip netns exec "$NS" "$SET_MARKS" 0x300 0xf00 < "$WORK/connections.txt" > "$WORK/set-marks.out"
    fi
    t1=$(now_ms)
    local got
    got=$(marked 768)
    [ "$got" -eq "$CONNECTIONS" ] || { echo "$1: $got of $CONNECTIONS connections carry the new mark" >&2; exit 1; }
    reset_marks
    [ "$(marked 256)" -eq "$CONNECTIONS" ] || { echo "the marks were not put back" >&2; exit 1; }
    awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.3f", ms / 1000}'
}

CT=() BW=()
for pass in $(seq "$PASSES"); do
    if [ $((pass % 2)) = 1 ]; then order="conntrack bawaba"; else order="bawaba conntrack"; fi
    for tool in $order; do
        s=$(run_tool "$tool")
        if [ "$tool" = conntrack ]; then CT+=("$s"); else BW+=("$s"); fi
        log "pass $pass: $tool $s s"
    done
done
MC=$(median "${CT[@]}")
MB=$(median "${BW[@]}")
echo "bench-requeue: $CONNECTIONS connections, $PASSES passes, $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "runs (s): conntrack -U ${CT[*]}; bawaba ${BW[*]}; bawaba's last: $(cat "$WORK/set-marks.out")"
printf '%-44s %10s\n' "median, conntrack -U per connection (s)" "$MC" "median, bawaba ctnetlink (s)" "$MB"
echo "ratio seconds bawaba/conntrack-U $(awk -v a="$MB" -v b="$MC" 'BEGIN {printf "%.4f", a / b}')"
