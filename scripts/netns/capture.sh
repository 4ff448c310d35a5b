#!/usr/bin/env bash
# Real-traffic capture for the engine's tests, with tshark's view of it as a golden file.
#   usage: scripts/netns/capture.sh OUT.pcap
# Brings up the netns topology (topology.sh, route mode, offloads off), starts the servers
# (servers.sh), captures with dumpcap on the gateway's client-side interface gc0 (classic pcap,
# Ethernet), runs every client once (traffic.sh), stops the capture with SIGINT, tears everything
# down (trap on EXIT, also on failure), then writes OUT.expected.tsv (OUT without .pcap) with
# tshark's view: one line per TCP/UDP stream, see the header written below. It ends by checking
# that every name traffic.sh used is in that file, that split.allowed.test's ClientHello spans
# more than one TCP segment and that quic-big.allowed.test's spans more than one Initial packet.
# Exit status: 0 only if traffic, capture and all checks succeeded (the files are written anyway).
# Overrides: PFX (namespace prefix, default bcap<pid>, so runs don't clash), KEEP_WORK=1 (keep the
# servers' workdir with logs and config, path printed). Other overrides pass to traffic.sh.
# Needs (scripts/install-test-deps.sh): iproute2 ethtool iptables nginx-light curl openssl
# dnsutils tshark (dumpcap), and the aioquic venv.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-}
case "$OUT" in
  *.pcap) ;;
  *) echo "usage: $0 OUT.pcap" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "capture.sh: needs root (network namespaces)" >&2; exit 1; }
for t in ip ethtool iptables nginx curl openssl dig tshark dumpcap; do
  command -v "$t" >/dev/null || { echo "capture.sh: missing $t (run scripts/install-test-deps.sh)" >&2; exit 1; }
done
export PFX=${PFX:-bcap$$}
G=$PFX-gw
TSV=${OUT%.pcap}.expected.tsv
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bawaba-capture.XXXXXX")
DUMPCAP_PID=
start=$(date +%s.%N)

alive() {  # alive PID: running and not a zombie (an exited child stays one until `wait`)
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case "$st" in Z*) return 1 ;; esac
}
stop_capture() {
  if [ -n "$DUMPCAP_PID" ]; then
    kill -INT "$DUMPCAP_PID" 2>/dev/null || true
    for _ in $(seq 50); do alive "$DUMPCAP_PID" || break; sleep 0.1; done
    if alive "$DUMPCAP_PID"; then  # never hang here
      echo "capture.sh: dumpcap ignored SIGINT, sending SIGTERM" >&2
      kill -TERM "$DUMPCAP_PID" 2>/dev/null || true
    fi
    wait "$DUMPCAP_PID" 2>/dev/null || true
    DUMPCAP_PID=
  fi
}
teardown() {
  stop_capture
  "$HERE/servers.sh" down "$PFX" "$WORK" || true
  "$HERE/topology.sh" down || true
}
cleanup() {
  local rc=$?
  teardown
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "workdir kept: $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/topology.sh" up route
"$HERE/servers.sh" up "$PFX" "$WORK"

# `ip netns exec` execs dumpcap, so $! is dumpcap's PID; dumpcap handles SIGINT itself
ip netns exec "$G" dumpcap -q -P -i gc0 -w "$WORK/capture.pcap" 2>"$WORK/dumpcap.log" </dev/null &
DUMPCAP_PID=$!
for _ in $(seq 100); do
  grep -q "Capturing on" "$WORK/dumpcap.log" 2>/dev/null && break
  kill -0 "$DUMPCAP_PID" 2>/dev/null || { cat "$WORK/dumpcap.log" >&2; exit 1; }
  sleep 0.1
done
sleep 0.3

traffic_rc=0
"$HERE/traffic.sh" "$PFX" || traffic_rc=$?
sleep 0.5  # let the last replies and FINs in
stop_capture
teardown
cp "$WORK/capture.pcap" "$OUT"; chmod 644 "$OUT"
end=$(date +%s.%N)

# ---- tshark's view ----------------------------------------------------------------------------
# tshark prints "Running as user root" on every run: drop that line, keep any other error
ts() { tshark "$@" 2>"$WORK/tshark.err"; local rc=$?; grep -v '^Running as user' "$WORK/tshark.err" >&2 || true; return $rc; }
# Per packet: stream, addresses, ports, names, and for counting the pieces of the message a name
# was found in: tcp.segment.count (set where tshark reassembled a PDU from TCP segments) and, for
# QUIC, the Initial packets carrying CRYPTO data (tshark 4.0 reassembles CRYPTO frames across
# Initials but has no count field for it). ICMP errors quoting a UDP/TCP header are left out.
ts -r "$OUT" -Y '(tcp or udp) and not icmp and not icmpv6' -T fields \
  -E separator=/t -E occurrence=a -E aggregator=, \
  -e frame.number -e frame.protocols -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst \
  -e tcp.stream -e udp.stream -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport \
  -e tls.handshake.extensions_server_name -e http.host -e dns.qry.name \
  -e tcp.segment.count -e quic.long.packet_type -e quic.crypto.offset >"$WORK/fields.tsv"
{
  printf '# tshark %s view of %s, written by scripts/netns/capture.sh; one line per TCP/UDP stream.\n' \
    "$(tshark --version 2>/dev/null | head -n 1 | awk '{print $3}')" "$(basename "$OUT")"
  printf '# client/cport: sender of the stream'"'"'s first packet. pkts: packets in the capture. first: its first frame (1-based).\n'
  printf '# tls_sni: SNI of a TLS-over-TCP ClientHello; http_host: HTTP/1.x Host; quic_sni: SNI of the ClientHello in\n'
  printf '# QUIC Initials; dns_qname: DNS question. name_parts: TCP segments (or QUIC Initial packets) that carry the\n'
  printf '# message the first name was found in (ClientHello, HTTP request head, DNS query), 1 = a single packet.\n'
  printf '# "-" = none. Several names in one column are comma-separated.\n'
  printf 'proto\tapp\tclient\tcport\tserver\tsport\tpkts\tfirst\ttls_sni\thttp_host\tquic_sni\tdns_qname\tname_parts\n'
  awk -F'\t' '
    function add(list, v,   n, a, i) {  # add the comma-separated values of v to list, unique
      if (v == "") return list
      n = split(v, a, ",")
      for (i = 1; i <= n; i++)
        if (("," list ",") !~ ("," a[i] ",")) list = (list == "" ? a[i] : list "," a[i])
      return list
    }
    {
      tcp = ($7 != "")
      if (tcp) { k = "tcp/" $7; sp = $9; dp = $10 } else { k = "udp/" $8; sp = $11; dp = $12 }
      s = ($3 != "" ? $3 : $4)
      if (!(k in pkts)) {
        order[++n] = k; first[k] = $1
        src[k] = s; dst[k] = ($5 != "" ? $5 : $6); cport[k] = sp; sport[k] = dp
      }
      pkts[k]++
      quic = ($2 ~ /:quic/)
      # client Initial packets with CRYPTO data, until the name is found
      if (quic && s == src[k] && $17 ~ /(^|,)0(,|$)/ && $18 != "" && !(k in parts)) qinit[k]++
      if ($13 != "") { if (quic) q[k] = add(q[k], $13); else t[k] = add(t[k], $13) }
      h[k] = add(h[k], $14); d[k] = add(d[k], $15)
      if (($13 != "" || $14 != "" || $15 != "") && !(k in parts))
        parts[k] = quic ? qinit[k] : ($16 != "" ? $16 : 1)
    }
    function f(v) { return v == "" ? "-" : v }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]
        app = (q[k] != "" ? "quic" : t[k] != "" ? "tls" : h[k] != "" ? "http" : d[k] != "" ? "dns" : "-")
        split(k, pk, "/")
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", pk[1], app, src[k], cport[k],
          dst[k], sport[k], pkts[k], first[k], f(t[k]), f(h[k]), f(q[k]), f(d[k]), f(parts[k])
      }
    }' "$WORK/fields.tsv"
} >"$TSV"

# ---- summary and checks -----------------------------------------------------------------------
problems=0
nflows=$(grep -vc -e '^#' -e '^proto' "$TSV" || true)
printf '\n%s: %s bytes, %s packets, %s TCP/UDP flows; %s\n' "$OUT" "$(stat -c %s "$OUT")" \
  "$(ts -r "$OUT" -T fields -e frame.number | wc -l)" "$nflows" "$TSV"
awk -F'\t' '!/^#/ && $1 != "proto" {
  names = ""
  for (c = 9; c <= 12; c++) if ($c != "-") names = names " " $c
  printf "  %-4s %-4s %s:%s -> %s:%s  %3d pkts %s%s\n", $1, $2, $3, $4, $5, $6, $7, names,
    ($13 != "-" && $13 > 1 ? "  (in " $13 " packets)" : "")
}' "$TSV"
missing=()
while read -r name; do
  cut -f9-12 "$TSV" | tr '\t,' '\n\n' | grep -qxF "$name" || missing+=("$name")
done < <("$HERE/traffic.sh" --names)
if [ ${#missing[@]} -gt 0 ]; then
  echo "NOT seen by tshark: ${missing[*]}"; problems=1
else
  echo "tshark sees all $("$HERE/traffic.sh" --names | wc -l) names traffic.sh used"
fi
# check_parts NAME MIN WHAT: the message carrying NAME must span at least MIN packets
check_parts() {
  local p
  p=$(awk -F'\t' -v n="$1" '!/^#/ { for (c = 9; c <= 12; c++) if ($c == n) { print $13; exit } }' "$TSV")
  if [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge "$2" ]; then
    echo "$1: $3 spans $p packets"
  else
    echo "$1: $3 does NOT span >= $2 packets (name_parts=${p:-none})"; problems=1
  fi
}
check_parts split.allowed.test 2 "ClientHello (MSS-clamped)"
check_parts split-sni.allowed.test 3 "ClientHello (cut in record header and mid-SNI)"
check_parts split-host.allowed.test 3 "HTTP request head (cut in Host and mid-name)"
check_parts quic-big.allowed.test 2 "QUIC ClientHello (Initial packets)"
[ "$traffic_rc" -eq 0 ] || { echo "traffic.sh reported failures"; problems=1; }
awk -v s="$start" -v e="$end" 'BEGIN { printf "took %.1f s (traffic and capture)\n", e - s }'
exit $problems
