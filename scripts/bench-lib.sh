# shellcheck shell=bash
# Helpers the bench-*.sh scripts share; source it after `set -euo pipefail`. The caller keeps
# the PIDs of the processes it starts in the array PIDS and its scratch directory in WORK.

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# free_port [DGRAM|STREAM]: a loopback port nothing holds now (UDP unless STREAM is given).
free_port() {
    python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_${1:-DGRAM}); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# field KEY FILE: the second word of the first line of FILE whose first word is KEY (a Prometheus
# sample, or a generator's "key value" summary).
field() { awk -v k="$1" '$1 == k {print $2; exit}' "$2"; }

# cpu_ticks PID: its utime + stime, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name may hold spaces). TICKS is ticks per second.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# shellcheck disable=SC2034 # used by the scripts that source this file
TICKS=$(getconf CLK_TCK)

# median VALUES...: the median of the numbers given, as separate words or in one or more
# space-separated arguments (the mean of the middle two for an even count).
median() {
    # shellcheck disable=SC2048,SC2086 # splitting every argument into numbers is the point
    printf '%s\n' $* | sort -g | awk '{v[NR] = $1} END {printf "%.10g\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# Milliseconds since the epoch, without starting a process (bash 5's EPOCHREALTIME).
now_ms() { local t=$EPOCHREALTIME; echo $((10#${t//[.,]/} / 1000)); }

# Installs the Debian packages named that are missing (apt-get update only when a first try
# fails).
install_packages() {
    local pkg missing=""
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        log "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086 # word splitting of the package list is intended
        apt-get install -y --no-install-recommends $missing || { apt-get update && apt-get install -y --no-install-recommends $missing; }
    fi
}

# Ends every process in PIDS (started by the script, by PID) and waits for them.
stop_started() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

# Removes WORK, or keeps it when KEEP_WORK is set; $1 names the script in the message.
remove_work() {
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "$1: kept $WORK (KEEP_WORK set)" >&2
    else
        rm -rf "$WORK"
    fi
}
