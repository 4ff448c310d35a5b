#!/usr/bin/env bash
# Whole-system benchmark: bawaba's packet engine (`bawaba inspect`) against nDPI's ndpiReader on the
# same large synthetic capture, one thread each, in one run. bawaba enforces a 1,000,000-domain +
# 500,000-prefix policy loaded through the normal workflow; ndpiReader classifies every flow.
#
#   bash scripts/bench-engine.sh                          # the full run (about 5 minutes on 2 vCPU)
#   FLOWS=20000 PASSES=1 bash scripts/bench-engine.sh     # a quick look
#   CAPTURE_CACHE=/var/tmp/bench-engine bash scripts/bench-engine.sh   # keep the capture for next time
#
# Settings (environment): FLOWS (flows in the capture, 120000; about 30 packets each), WINDOW (flows
# open at once, 5000), PASSES (alternating runs of each tool, 3; medians are reported),
# CAPTURE_CACHE (a directory: the capture and rule files are generated there if missing or made by
# other settings or another generator, and reused otherwise), NO_BUILD (set: use the binaries in
# target/release as they are), KEEP_WORK (set: keep the temporary directory).
#
# What it does: installs libndpi-bin (ndpiReader) with apt-get if missing; builds bawaba and the
# generator (crates/engine/examples/gen_capture.rs, fixed seed) in release; generates the capture
# (Ethernet pcap, interleaved flows: TLS, QUIC, HTTP, DNS, bulk TCP; 20% IPv6) and the rule files;
# loads the policy into bawaba (init, order add, `policy import --format domains` and
# `--format cidr`, approve as a second actor, publish) and uses the newest signed bundle; reads
# the capture once, from a cold page cache, to put it in the page cache; then runs, PASSES times
# in turn,
#   ndpiReader -i capture.pcap                        (nDPI's demo reader; pcap input is one thread)
#   ndpiReader -e 0 -i capture.pcap                   (the same without its printable-string scan)
#   bawaba inspect --summary --bundle B capture.pcap  (single-threaded)
# under /usr/bin/time (wall, user+sys CPU, max RSS). Each tool also reports its own packet
# processing time, which excludes its setup: ndpiReader's "Packet Processing Time" (from after its
# setup until its reader thread ends) and bawaba's "N packets in S s" (from after the policy bundle
# is read, verified and compiled until the last flow is reported). The last line,
# `ratio pps bawaba/ndpiReader <value>`, divides the medians of those in-process rates, against
# the faster of the two ndpiReader configurations; the ratios against plain `ndpiReader -i` and
# the wall-clock ratios are printed above it. Both tools' packet and flow counts are checked
# against the generator's (a run that did not read every packet fails the script).
#
# Reads local files only; no network traffic at all after the package install. The temporary
# directory is removed on any exit (trap).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD

FLOWS=${FLOWS:-120000}
WINDOW=${WINDOW:-5000}
PASSES=${PASSES:-3}
BAWABA=$ROOT/target/release/bawaba
GEN=$ROOT/target/release/examples/gen_capture

WORK=$(mktemp -d /tmp/bench-engine.XXXXXX)
cleanup() {
    remove_work bench-engine.sh
}
trap cleanup EXIT
trap 'echo "bench-engine.sh: failed at line $LINENO" >&2' ERR
trap 'exit 130' INT TERM


# ---- dependencies -------------------------------------------------------------------------------
install_packages libndpi-bin time
if [ -z "${NO_BUILD:-}" ]; then
    log "building bawaba and gen_capture (release)"
    cargo build --release -p bawaba
    cargo build --release -p bawaba-engine --example gen_capture
fi

# ---- the capture and the rules --------------------------------------------------------------------
DATA=${CAPTURE_CACHE:-$WORK/data}
mkdir -p "$DATA"
STAMP="flows=$FLOWS window=$WINDOW gen=$(sha256sum "$ROOT/crates/engine/examples/gen_capture.rs" | cut -c1-16)"
if [ -f "$DATA/stamp" ] && [ "$(cat "$DATA/stamp")" = "$STAMP" ] && [ -s "$DATA/capture.pcap" ] &&
    [ -s "$DATA/rules/domains.txt" ] && [ -s "$DATA/rules/prefixes.txt" ] && [ -s "$DATA/summary.txt" ]; then
    log "reusing the capture in $DATA ($STAMP)"
else
    log "generating $FLOWS flows (window $WINDOW) and the rules into $DATA"
    rm -f "$DATA/stamp"
    "$GEN" "$DATA/capture.pcap" "$DATA/rules" "$FLOWS" "$WINDOW" > "$DATA/summary.txt"
    echo "$STAMP" > "$DATA/stamp"
fi
CAPTURE=$DATA/capture.pcap
field() { awk -v k="$1" '$1 == k {print $2}' "$DATA/summary.txt"; }
PACKETS=$(field packets)
GEN_FLOWS=$(field flows)
log "capture: $PACKETS packets, $GEN_FLOWS flows, $(($(stat -c %s "$CAPTURE") / 1048576)) MiB"

# ---- bawaba: the policy through the normal workflow ----------------------------------------------
mkdir -p "$WORK/bawaba"
cat > "$WORK/bawaba.toml" <<EOF
[store]
data_dir = "$WORK/bawaba/data"
EOF
b() { "$BAWABA" --config "$WORK/bawaba.toml" "$@"; }
b init > /dev/null
b --actor alice order add --authority 'Benchmark Court' --reference BENCH-ENGINE-1 --category court-order \
    --expires +30d --summary 'engine benchmark policy' --appeal-contact appeals@bench.example > /dev/null
t0=$(now_ms)
b --actor alice policy import --order 1 --format domains "$DATA/rules/domains.txt" > "$WORK/import-domains.txt"
b --actor alice policy import --order 1 --format cidr --action drop "$DATA/rules/prefixes.txt" > "$WORK/import-prefixes.txt"
IMPORT_MS=$(($(now_ms) - t0))
log "imported in $IMPORT_MS ms: $(tail -2 "$WORK/import-domains.txt" | tr '\n' ' ') / $(tail -2 "$WORK/import-prefixes.txt" | tr '\n' ' ')"
b --actor bob order approve 1 > /dev/null
t0=$(now_ms)
b --actor bob policy publish > /dev/null
PUBLISH_MS=$(($(now_ms) - t0))
# shellcheck disable=SC2012 # bundle names are ours: no odd characters
BUNDLE=$(ls -t "$WORK/bawaba/data/bundles/"*.bundle | head -1)
log "published in $PUBLISH_MS ms: $(basename "$BUNDLE"), $(($(stat -c %s "$BUNDLE") / 1024)) KiB"

# ---- runs -------------------------------------------------------------------------------------------
# The same page-cache state for every run of the script: the capture is dropped from the cache,
# then read once from start to end. A file the kernel reads ahead sequentially sits in large
# page-cache folios; pages that came in by other paths (say, faulted in one at a time while
# something else pushed parts of the file out) sit in small ones, and mapping those into a process
# costs more kernel time per byte. That cost falls on bawaba, which maps the capture, and not on
# ndpiReader, which copies it through read(): on 29 Nov 2026 the same bawaba binary made 3.8-4.1 M
# packets/s on a capture left in the cache by earlier work and 5.7-5.9 M after this warm-up.
log "warming the page cache (drop the capture's pages, then read it once in order)"
dd if="$CAPTURE" iflag=nocache count=0 status=none
cat "$CAPTURE" > /dev/null

# Tools, run in this order in every pass. ndpiReader's default (-e 5) scans every payload of a
# flow for "human readable strings" until it finds one, a report feature of the demo app that
# classifies nothing; `-e 0` turns it off and gives the same protocol counts. Both are measured;
# the ratio line uses the faster one.
TOOLS=(ndpi ndpi_e0 bawaba)
declare -A LABEL=([ndpi]="ndpiReader -i" [ndpi_e0]="ndpiReader -e 0 -i" [bawaba]="bawaba inspect")
declare -A SHORT=([ndpi]="ndpiReader-default" [ndpi_e0]="ndpiReader-e0")
declare -A PPS WALL CPU RSS FLOWS_SEEN

# run_tool TOOL PASS: one timed run (wall, user+sys CPU, max RSS from /usr/bin/time); appends
# "pps wall cpu rss" to the tool's lists, after checking the packet count.
run_tool() {
    local tool=$1 pass=$2 out=$WORK/$1-$2.out err=$WORK/$1-$2.err
    local pps flows secs count
    case $tool in
        ndpi) /usr/bin/time -f '@@time %e %U %S %M' ndpiReader -i "$CAPTURE" > "$out" 2> "$err" ;;
        ndpi_e0) /usr/bin/time -f '@@time %e %U %S %M' ndpiReader -e 0 -i "$CAPTURE" > "$out" 2> "$err" ;;
        bawaba)
            /usr/bin/time -f '@@time %e %U %S %M' "$BAWABA" --config "$WORK/bawaba.toml" inspect --summary \
                --bundle "$BUNDLE" "$CAPTURE" > "$out" 2> "$err"
            ;;
    esac
    if [ "$tool" = bawaba ]; then
        # stderr: "N packets in S s: P packets/s"; stdout: the totals.
        read -r count secs pps < <(awk '/ packets in .* s: / {print $1, $4, $6; exit}' "$err")
        flows=$(awk '$1 == "flows" {print $2; exit}' "$out")
        [ "$count" = "$PACKETS" ] || { echo "bawaba read $count packets, the capture has $PACKETS" >&2; exit 1; }
    else
        # "IP packets: N of M packets total", "Packet Processing Time: T msec" (after setup).
        local ip all ms unit
        read -r ip all < <(awk '/IP packets:/ {print $3, $5; exit}' "$out")
        read -r ms unit < <(awk '/Packet Processing Time:/ {print $4, $5; exit}' "$out")
        flows=$(awk '/Unique flows:/ {print $3; exit}' "$out")
        [ "$unit" = msec ] || { echo "ndpiReader: unexpected time unit '$unit'" >&2; exit 1; }
        if [ "$all" != "$PACKETS" ] || [ "$ip" != "$PACKETS" ]; then
            echo "ndpiReader read $ip IP packets of $all, the capture has $PACKETS" >&2
            exit 1
        fi
        secs=$(awk -v ms="$ms" 'BEGIN {print ms / 1000}')
        pps=$(awk -v n="$PACKETS" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
    fi
    local wall cpu rss
    read -r wall cpu rss < <(awk '/^@@time / {print $2, $3 + $4, $5}' "$err")
    PPS[$tool]="${PPS[$tool]:-} $pps" WALL[$tool]="${WALL[$tool]:-} $wall"
    CPU[$tool]="${CPU[$tool]:-} $cpu" RSS[$tool]="${RSS[$tool]:-} $rss" FLOWS_SEEN[$tool]=$flows
    log "${LABEL[$tool]}: $PACKETS packets, $flows flows, processing $secs s ($pps packets/s), wall $wall s, CPU $cpu s"
}

for pass in $(seq 1 "$PASSES"); do
    for tool in "${TOOLS[@]}"; do
        log "pass $pass/$PASSES: ${LABEL[$tool]}"
        run_tool "$tool" "$pass"
    done
done

# ---- report -----------------------------------------------------------------------------------------
pps_of() { awk -v n="$PACKETS" -v s="$1" 'BEGIN {printf "%.0f", n / s}'; }
commas() { echo "$1" | sed 's/^ //; s/ /,/g'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
declare -A M_PPS M_WALL
for tool in "${TOOLS[@]}"; do
    M_PPS[$tool]=$(median "${PPS[$tool]}")
    M_WALL[$tool]=$(median "${WALL[$tool]}")
done
# The stronger baseline: the ndpiReader configuration with the higher median rate.
BASE=ndpi
awk -v a="${M_PPS[ndpi_e0]}" -v b="${M_PPS[ndpi]}" 'BEGIN {exit !(a > b)}' && BASE=ndpi_e0
last=$PASSES
row() { printf '%-40s %24s %24s %24s\n' "$@"; }
{
    echo
    echo "bench-engine: $PACKETS packets, $GEN_FLOWS flows, $(($(stat -c %s "$CAPTURE") / 1048576)) MiB capture;" \
        "$(grep -c . "$DATA/rules/domains.txt") domain + $(grep -c . "$DATA/rules/prefixes.txt") prefix rules;" \
        "$(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC')"
    grep '^kind ' "$DATA/summary.txt" | sed 's/^/  /'
    echo "bawaba policy import $IMPORT_MS ms, publish $PUBLISH_MS ms; ndpiReader (libndpi-bin) $(dpkg-query -W -f='${Version}' libndpi-bin)"
    row metric "bawaba inspect" "ndpiReader -i" "ndpiReader -e 0 -i"
    row "packets read" "$PACKETS" "$PACKETS" "$PACKETS"
    row "flows" "${FLOWS_SEEN[bawaba]}" "${FLOWS_SEEN[ndpi]}" "${FLOWS_SEEN[ndpi_e0]}"
    row "packets/s, own processing time (median)" "${M_PPS[bawaba]}" "${M_PPS[ndpi]}" "${M_PPS[ndpi_e0]}"
    row "  runs" "$(commas "${PPS[bawaba]}")" "$(commas "${PPS[ndpi]}")" "$(commas "${PPS[ndpi_e0]}")"
    row "wall time, whole process (s, median)" "${M_WALL[bawaba]}" "${M_WALL[ndpi]}" "${M_WALL[ndpi_e0]}"
    row "  runs" "$(commas "${WALL[bawaba]}")" "$(commas "${WALL[ndpi]}")" "$(commas "${WALL[ndpi_e0]}")"
    row "packets/s, wall (median)" "$(pps_of "${M_WALL[bawaba]}")" "$(pps_of "${M_WALL[ndpi]}")" "$(pps_of "${M_WALL[ndpi_e0]}")"
    row "CPU user+sys (s, median)" "$(median "${CPU[bawaba]}")" "$(median "${CPU[ndpi]}")" "$(median "${CPU[ndpi_e0]}")"
    mib() { awk -v k="$(median "$1")" 'BEGIN {printf "%.0f", k / 1024}'; }
    row "max RSS (MiB, median)" "$(mib "${RSS[bawaba]}")" "$(mib "${RSS[ndpi]}")" "$(mib "${RSS[ndpi_e0]}")"
    echo "bawaba totals (last run):"
    sed -n '/^--$/,$p' "$WORK/bawaba-$last.out" | tail -n +2 | sed 's/^/  /'
    echo "ndpiReader protocols (last run of ndpiReader -i):"
    sed -n '/Detected protocols:/,/^$/p' "$WORK/ndpi-$last.out" | tail -n +2 | sed '/^$/d; s/^\t*/  /'
    echo "ratio pps (own processing time) bawaba/ndpiReader-default $(ratio "${M_PPS[bawaba]}" "${M_PPS[ndpi]}")"
    echo "ratio pps (wall) bawaba/ndpiReader-default $(ratio "${M_WALL[ndpi]}" "${M_WALL[bawaba]}")"
    echo "ratio pps (wall) bawaba/${SHORT[$BASE]} $(ratio "${M_WALL[$BASE]}" "${M_WALL[bawaba]}")"
    echo "baseline for the ratio below: ${LABEL[$BASE]} (the faster ndpiReader configuration), own processing time"
    echo "ratio pps bawaba/ndpiReader $(ratio "${M_PPS[bawaba]}" "${M_PPS[$BASE]}")"
}
