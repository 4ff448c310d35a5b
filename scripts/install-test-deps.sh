#!/bin/sh
# Installs the Debian packages that bawaba's real-peer integration tests drive.
#
# Idempotent: installs only the packages that are missing, and runs `apt-get update` only when
# something has to be installed. Add packages to TEST_PACKAGES as more peers join the tests.
#
# Usage (as root): scripts/install-test-deps.sh
set -eu

# Debian package names, one per line; comments say which test uses them.
TEST_PACKAGES="
unbound
bind9
dnsutils
"
# unbound:  crates/formats/tests/unbound.rs (RPZ export served by a real resolver)
# bind9:    crates/dns/tests/differential.rs (BIND is the RPZ reference where Unbound differs)
# dnsutils: dig, the client those tests query with

missing=""
for pkg in $TEST_PACKAGES; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "ok: $pkg already installed"
    else
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "all test dependencies installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to install:$missing (run with sudo)" >&2
    exit 1
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y --no-install-recommends $missing
