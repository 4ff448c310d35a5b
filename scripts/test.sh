#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the peers the tests drive (Unbound, dig, ...),
# then runs every unit, integration and doc test of the workspace.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -p bawaba-store   # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --locked "$@"
