#!/usr/bin/env bash
# Client traffic for the netns capture harness: from the client namespace ($PFX-cli) of
# scripts/netns/topology.sh (route mode), runs each client once, in sequence, against the servers
# of scripts/netns/servers.sh, every one under `timeout` so nothing hangs.
#   usage: scripts/netns/traffic.sh PFX        run the clients (exit 1 if any failed)
#          scripts/netns/traffic.sh --names    print the server names used, one a line
# Every flow uses its own server name (SNI / Host / QNAME), so a capture's flows can be told apart:
#   TCP+TLS (curl --resolve NAME:443:ADDR, self-signed cert accepted with -k):
#     t13.allowed.test   TLS 1.3, HTTP/1.1        t12.allowed.test  TLS <= 1.2, HTTP/1.1
#     h2.allowed.test    TLS 1.3, HTTP/2          v6.allowed.test   TLS over IPv6, HTTP/2
#     blocked.test       TLS 1.3, HTTP/2
#     s-client.allowed.test  openssl s_client (TLS 1.3, no HTTP)
#     split.allowed.test TLS 1.3 whose ClientHello is split over several TCP segments: a TCPMSS rule
#                        in the gateway's mangle FORWARD chain, matching only this connection's client
#                        ports (SPLIT_PORTS), clamps the MSS of both SYNs to SPLIT_MSS (default 200)
#     split-sni.allowed.test TLS (Python ssl) whose ClientHello the client itself sends in 3 segments:
#                        cut inside the 5-byte record header and in the middle of the SNI name
#   TCP plain HTTP/1.1 cut by tcp_split_client.py into 3 segments (inside "Host", mid-name):
#     split-host.allowed.test
#   TCP plain HTTP/1.1:  h1.allowed.test, h1-v6.allowed.test (IPv6), www.blocked.test
#   QUIC (quic_client.py, aioquic, UDP 443):
#     quic.allowed.test (ALPN h3), quic-v6.allowed.test (IPv6, ALPN hq-interop),
#     quic-big.allowed.test (48 extra long ALPN ids: ~1.9 KB ClientHello over two Initial packets)
#   DNS (dig, one try, 1 s): dns.allowed.test A, dns.blocked.test A (UDP), dns-tcp.allowed.test A
#     (TCP), dns-v6.allowed.test AAAA (UDP over IPv6)
# Overrides: SRV4, SRV6 (server addresses), T (per-client timeout, s), GAP (pause between clients,
# s), SPLIT_MSS, SPLIT_PORTS, BAWABA_TEST_VENV (venv with aioquic).
# Needs: curl, openssl, dig (dnsutils), iptables, the aioquic venv (scripts/install-test-deps.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LIST=
if [ "${1:-}" = --names ]; then LIST=1; PFX=none
elif [ -n "${1:-}" ]; then PFX=$1
else echo "usage: $0 PFX | --names" >&2; exit 2; fi
C=$PFX-cli; G=$PFX-gw
SRV4=${SRV4:-198.18.2.2}; SRV6=${SRV6:-2001:db8:2::2}
T=${T:-10}; GAP=${GAP:-0.3}
SPLIT_MSS=${SPLIT_MSS:-200}; SPLIT_PORTS=${SPLIT_PORTS:-41000:41009}
PY=${BAWABA_TEST_VENV:-/var/cache/bawaba-test-venv}/bin/python
# never a proxy, never ~/.curlrc
CURL=(curl -q -sS -k --noproxy '*' --connect-timeout 3 --max-time 5 -o /dev/null
      -w '%{http_code} %{http_version} %{remote_ip}')
DIG=(dig +tries=1 +time=1 +short)
ok=0; failed=()

# step NAME CMD...: run CMD in the client ns under timeout, report its last output line
step() {
  local name=$1 out; shift
  if [ -n "$LIST" ]; then echo "$name"; return 0; fi
  if out=$(timeout "$T" ip netns exec "$C" "$@" 2>&1 </dev/null); then
    ok=$((ok + 1)); printf '  ok    %-24s %s\n' "$name" "$(tail -n 1 <<<"$out")"
  else
    failed+=("$name"); printf '  FAIL  %-24s %s\n' "$name" "$(tail -n 1 <<<"$out")"
  fi
  sleep "$GAP"
}
https() { local n=$1 a=$2; shift 2; step "$n" "${CURL[@]}" "$@" --resolve "$n:443:$a" "https://$n/"; }
http() { local n=$1 a=$2; shift 2; step "$n" "${CURL[@]}" "$@" --resolve "$n:80:$a" "http://$n/"; }
quic() { local n=$1 a=$2; shift 2; step "$n" "$PY" "$HERE/quic_client.py" --sni "$n" "$@" "$a"; }

split_rules() {  # split_rules -A|-D
  ip netns exec "$G" iptables -t mangle "$1" FORWARD -p tcp -s "$SRV4" -d 198.18.1.2 \
    --dport "$SPLIT_PORTS" --tcp-flags SYN,RST SYN -j TCPMSS --set-mss "$SPLIT_MSS" &&
  ip netns exec "$G" iptables -t mangle "$1" FORWARD -p tcp -s 198.18.1.2 -d "$SRV4" \
    --sport "$SPLIT_PORTS" --tcp-flags SYN,RST SYN -j TCPMSS --set-mss "$SPLIT_MSS"
}

if [ -z "$LIST" ]; then
  for ns in "$C" "$G"; do
    ip netns exec "$ns" true 2>/dev/null || { echo "traffic.sh: namespace $ns missing" >&2; exit 1; }
  done
  [ -x "$PY" ] || { echo "traffic.sh: no venv python at $PY (scripts/install-test-deps.sh)" >&2; exit 1; }
  trap 'split_rules -D 2>/dev/null || true' EXIT
  echo "traffic from $C to $SRV4 / $SRV6:"
fi

https t13.allowed.test      "$SRV4" --tlsv1.3 --http1.1
https t12.allowed.test      "$SRV4" --tls-max 1.2 --http1.1
http  h1.allowed.test       "$SRV4" --http1.1
https h2.allowed.test       "$SRV4" --http2
https v6.allowed.test       "[$SRV6]"
http  h1-v6.allowed.test    "[$SRV6]"
https blocked.test          "$SRV4"
http  www.blocked.test      "$SRV4"
step  s-client.allowed.test openssl s_client -connect "$SRV4:443" -servername s-client.allowed.test -brief
if [ -z "$LIST" ]; then split_rules -A; fi
https split.allowed.test    "$SRV4" --tlsv1.3 --http1.1 --local-port "${SPLIT_PORTS/:/-}"
if [ -z "$LIST" ]; then split_rules -D; fi
step  split-sni.allowed.test  "$PY" "$HERE/tcp_split_client.py" --sni split-sni.allowed.test "$SRV4"
step  split-host.allowed.test "$PY" "$HERE/tcp_split_client.py" --plain --sni split-host.allowed.test "$SRV4"
quic  quic.allowed.test     "$SRV4" --alpn h3
quic  quic-big.allowed.test "$SRV4" --alpn h3 --big
quic  quic-v6.allowed.test  "$SRV6" --alpn hq-interop
step  dns.allowed.test      "${DIG[@]}" @"$SRV4" dns.allowed.test A
step  dns.blocked.test      "${DIG[@]}" @"$SRV4" dns.blocked.test A
step  dns-tcp.allowed.test  "${DIG[@]}" +tcp @"$SRV4" dns-tcp.allowed.test A
step  dns-v6.allowed.test   "${DIG[@]}" @"$SRV6" dns-v6.allowed.test AAAA

[ -n "$LIST" ] && exit 0
echo "traffic: $ok ok, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
