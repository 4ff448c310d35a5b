#!/usr/bin/env bash
# A five-minute walk through the policy core on the example config (data in ./data):
# init, record an order, add and import rules, approve with a second identity, check, publish a
# signed bundle, verify it and the audit log. Safe to run again: it adds another order each time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p bawaba
b() { echo "+ bawaba $*" >&2; ./target/release/bawaba --config etc/bawaba.example.toml "$@"; }

b init
b --actor alice order add --authority 'Court of First Instance, Baghdad' --reference "CFI-$(date +%Y)-0042" \
  --category phishing --expires +90d --summary 'Pages imitating a bank login to steal credentials' \
  --appeal-contact 'appeals@cmc.example'
order=$(b order list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
b --actor alice rule add --order "$order" --action block-page bank-login.example 198.18.66.0/24
b --actor alice policy import --order "$order" --format domains etc/examples/phishing-domains.txt
b --actor admin allow add exact:help.bank-login.example --reason 'the real bank help page, shared CDN' || true
b --actor alice order approve "$order" || echo "(refused as it should be: the proposer cannot approve)"
b --actor bob order approve "$order"
b policy check www.bank-login.example
b policy check help.bank-login.example
b policy check 198.18.66.7
b policy check login.paypa1-support.example
b policy check unrelated.example
b --actor bob policy publish
b policy verify "$(ls -t data/bundles/*.bundle | head -n 1)"
b policy export --out data/bawaba.rpz && sed -n '/^; ---- order/,$p' data/bawaba.rpz | head -n 24
b audit verify
