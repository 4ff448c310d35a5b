#!/bin/sh
# Installs the Debian packages that bawaba's real-peer integration tests drive, and the Python
# venv with aioquic that the netns capture harness (scripts/netns/) uses.
#
# Idempotent: installs only the packages that are missing, and runs `apt-get update` only when
# something has to be installed; builds the venv only when it lacks aioquic. Add packages to
# TEST_PACKAGES as more peers join the tests.
#
# Usage (as root): scripts/install-test-deps.sh
#   BAWABA_TEST_VENV=DIR puts the venv elsewhere (default /var/cache/bawaba-test-venv; the
#   scripts in scripts/netns/ read the same variable).
set -eu

# Debian package names, one per line; comments say which test uses them.
TEST_PACKAGES="
unbound
bind9
dnsutils
iproute2
ethtool
iptables
procps
tshark
nginx-light
curl
openssl
python3-venv
conntrack
gobgpd
bird2
softflowd
nfdump
pmacct
chromium
chromium-driver
fonts-dejavu-core
"
# unbound:  crates/formats/tests/unbound.rs (RPZ export served by a real resolver)
# bind9:    crates/dns/tests/differential.rs (BIND is the RPZ reference where Unbound differs)
# dnsutils: dig, the client those tests query with; also scripts/netns/traffic.sh's DNS client
# The netns capture harness (scripts/netns/capture.sh, which makes the pcaps and tshark golden
# files under crates/engine/tests/captures/):
# iproute2, ethtool: scripts/netns/topology.sh (namespaces, veths, offloads off)
# iptables: scripts/netns/traffic.sh (TCPMSS clamp that splits one ClientHello over segments)
# procps:   ps, scripts/netns/servers.sh's stop
# tshark:   dumpcap captures, tshark writes the .expected.tsv (the differential reference)
# nginx-light: HTTP/1.1, TLS 1.2/1.3 and HTTP/2 server; curl, openssl: the TCP clients
# conntrack: inserts and lists the connections whose marks crates/engine/tests/conntrack.rs
#           sets through ctnetlink
# gobgpd, bird2: BGP peers for the mitigation speaker (crates/bgp/tests/peers.rs)
# softflowd: crates/flow/tests/softflowd.rs (exports a generated capture as NetFlow v5, v9 and
#           IPFIX for bawaba-flow to decode)
# nfdump:   the same test's differential collector (nfcapd receives the datagrams, nfdump prints
#           the flows bawaba's decode must match)
# pmacct:   crates/flow/tests/pmacct.rs (pmacctd's sfprobe exports the same capture as sFlow v5;
#           sfacctd, pmacct's sFlow collector, is the differential reference, nfdump having none)
# chromium, chromium-driver: the headless browser and its WebDriver server (chromedriver) that
#           bawaba_testkit::webdriver drives for the web console tests
#           (crates/testkit/tests/webdriver.rs; the console's browser tests)
# fonts-dejavu-core: DejaVu Sans, Chromium's sans-serif here, has Arabic glyphs and joining
#           forms, so the console's Arabic pages shape correctly in screenshots (without an Arabic
#           font they show boxes). One face for Latin and Arabic, 3 MB, and usually present
#           already (fontconfig-config depends on it or an alternative); listed so it stays
# python3-venv: /usr/bin/python3's venv for aioquic (QUIC client/server; no python3-aioquic
#           in Debian 12), built below under $VENV; `python3` on a PATH may be another one
VENV=${BAWABA_TEST_VENV:-/var/cache/bawaba-test-venv}
AIOQUIC=aioquic==1.7.2

missing=""
for pkg in $TEST_PACKAGES; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "ok: $pkg already installed"
    else
        missing="$missing $pkg"
    fi
done

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import aioquic' 2>/dev/null
}

if [ -z "$missing" ] && venv_ok; then
    echo "ok: $AIOQUIC in $VENV"
    echo "all test dependencies installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to install:$missing${missing:+ and} the venv $VENV (run with sudo)" >&2
    exit 1
fi

if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # tshark's wireshark-common asks whether non-root users may capture: no (tests run as root)
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y --no-install-recommends $missing
fi

if ! venv_ok; then
    echo "building venv $VENV with $AIOQUIC"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$AIOQUIC"
    venv_ok
fi
echo "all test dependencies installed"
