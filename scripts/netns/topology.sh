#!/usr/bin/env bash
# 3-namespace test topology:  client <-> gateway <-> server
#   usage: scripts/netns/topology.sh up [route|bridge]   |   scripts/netns/topology.sh down
#   PFX=<prefix> changes the namespace name prefix (default "bwb"), so that concurrent tests
#     (each with its own PFX) don't clash: namespaces are $PFX-cli, $PFX-gw, $PFX-srv.
#     Interface names are fixed (see below): they live inside the namespaces, never in the root ns.
#   OFFLOAD=off (default) turns off tx checksum offload and TSO/GSO/GRO on every veth, so that
#     captures show real MTU-sized packets with correct checksums; OFFLOAD=on keeps veth defaults.
# route  mode: gw routes between 198.18.1.0/24 (client side) and 198.18.2.0/24 (server side)
#              and 2001:db8:1::/64 <-> 2001:db8:2::/64
#              client 198.18.1.2 / 2001:db8:1::2, gw 198.18.1.1 + 198.18.2.1 / 2001:db8:{1,2}::1,
#              server 198.18.2.2 / 2001:db8:2::2
# bridge mode: gw bridges both veths in br0; client and server share 198.18.0.0/24, 2001:db8::/64
#              client 198.18.0.2 / 2001:db8::2, server 198.18.0.3 / 2001:db8::3
# Interface names (all <=15 chars):
#   client ns: c0            (peer of gw's gc0)
#   gw ns:     gc0 (client side), gs0 (server side) [, br0 in bridge mode]
#   server ns: s0            (peer of gw's gs0)
# Only 198.18.0.0/15 and 2001:db8::/32 (documentation/benchmark ranges) are used; nothing here
# touches the root namespace's addresses, routes or resolver.
# This is the repo's own copy of the team's shared netns-topology.sh (CI's clone must not depend on
# a shared/ folder beside it); keep the two in step when either changes.
# Needs: iproute2, ethtool (scripts/install-test-deps.sh), root.
set -euo pipefail
PFX=${PFX:-bwb}
C=$PFX-cli; G=$PFX-gw; S=$PFX-srv
cmd=${1:-up}; mode=${2:-route}; OFFLOAD=${OFFLOAD:-off}

down() {
  for ns in $C $G $S; do ip netns del "$ns" 2>/dev/null || true; done
}

up() {
  case "$mode" in route|bridge) ;; *) echo "unknown mode: $mode (route|bridge)" >&2; exit 2 ;; esac
  down
  for ns in $C $G $S; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  # veth pairs created directly inside their namespaces (no name clash in root ns)
  ip link add c0 netns $C type veth peer name gc0 netns $G
  ip link add s0 netns $S type veth peer name gs0 netns $G
  # no IPv6 DAD delays
  for ns in $C $G $S; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  done
  if [ "$mode" = route ]; then
    ip -n $C addr add 198.18.1.2/24 dev c0
    ip -n $C addr add 2001:db8:1::2/64 dev c0 nodad
    ip -n $G addr add 198.18.1.1/24 dev gc0
    ip -n $G addr add 2001:db8:1::1/64 dev gc0 nodad
    ip -n $G addr add 198.18.2.1/24 dev gs0
    ip -n $G addr add 2001:db8:2::1/64 dev gs0 nodad
    ip -n $S addr add 198.18.2.2/24 dev s0
    ip -n $S addr add 2001:db8:2::2/64 dev s0 nodad
    for l in "$C c0" "$G gc0" "$G gs0" "$S s0"; do set -- $l; ip -n $1 link set $2 up; done
    ip -n $C route add default via 198.18.1.1
    ip -n $C -6 route add default via 2001:db8:1::1
    ip -n $S route add default via 198.18.2.1
    ip -n $S -6 route add default via 2001:db8:2::1
    ip netns exec $G sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  else
    ip -n $G link add br0 type bridge
    ip -n $G link set gc0 master br0
    ip -n $G link set gs0 master br0
    ip -n $C addr add 198.18.0.2/24 dev c0
    ip -n $C addr add 2001:db8::2/64 dev c0 nodad
    ip -n $S addr add 198.18.0.3/24 dev s0
    ip -n $S addr add 2001:db8::3/64 dev s0 nodad
    for l in "$C c0" "$G gc0" "$G gs0" "$G br0" "$S s0"; do set -- $l; ip -n $1 link set $2 up; done
    # to make bridged IPv4 traffic traverse iptables in the gw ns:
    #   ip netns exec $G sysctl -w net.bridge.bridge-nf-call-iptables=1
  fi
  if [ "$OFFLOAD" = off ]; then
    for l in "$C c0" "$G gc0" "$G gs0" "$S s0"; do set -- $l
      ip netns exec $1 ethtool -K $2 tx off tso off gso off gro off >/dev/null 2>&1 ||
        echo "warning: ethtool could not turn offloads off on $1/$2 (captures may show bad checksums)" >&2
    done
  fi
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up [route|bridge] | down" >&2; exit 2 ;;
esac
