#!/usr/bin/env python3
"""Synthetic data for scripts/bench-dns.sh: an "internet" of zones for NSD, a blocking policy as a
domain list, and a dnsperf query file. Deterministic (fixed seed): two runs measure the same input.

Usage: bench-dns-gen.py OUTDIR NAMES RULES QUERIES DISTINCT BLOCKED_PERCENT

Writes into OUTDIR:
  zones/<tld>.zone   NAMES host names spread over the TLD-like zones, A in 198.18.0.0/15 and, for
                     a third of them, AAAA in 2001:db8::/32
  nsd-zones.conf     the `zone:` stanzas for nsd.conf
  rules.txt          RULES lines (55% `exact:name`, 45% `name` = subtree); the names that cover the
                     blocked part of the query mix come first, the rest are names that do not exist
  queries.txt        QUERIES dnsperf lines drawn from DISTINCT zone names with a Zipf-like skew
                     (weight 1/rank), 90% A and 10% AAAA; names are chosen for blocking until
                     BLOCKED_PERCENT of the query lines are covered by a rule
  summary.txt        what was generated
"""
import os
import random
import sys

TLDS = ["alpha", "bravo", "charlie", "delta", "echo"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ro", "sa", "ti", "vu", "za", "qi", "be", "do", "fu", "gi",
             "ha", "ju", "ke", "ly", "mo", "nu", "pe", "ra", "si", "to", "wa", "xe", "yo", "zu"]


def main():
    out, names, rules, queries, distinct, blocked_pct = sys.argv[1], *map(int, sys.argv[2:7])
    rng = random.Random(20261128)
    os.makedirs(os.path.join(out, "zones"), exist_ok=True)

    # The zone names: <syllables><index>.<tld>, some with a www/mail/cdn label in front.
    hosts = []
    for i in range(names):
        tld = TLDS[i % len(TLDS)]
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        prefix = rng.choice(["", "", "www.", "mail.", "cdn."])
        hosts.append(f"{prefix}{word}{i}.{tld}")
    with open(os.path.join(out, "nsd-zones.conf"), "w") as conf:
        for tld in TLDS:
            conf.write(f'zone:\n  name: "{tld}"\n  zonefile: "{out}/zones/{tld}.zone"\n')
    files = {tld: open(os.path.join(out, "zones", f"{tld}.zone"), "w") for tld in TLDS}
    for tld, f in files.items():
        f.write(f"$ORIGIN {tld}.\n$TTL 3600\n")
        f.write(f"@ IN SOA ns.{tld}. hostmaster.{tld}. ( 1 3600 600 86400 300 )\n@ IN NS ns.{tld}.\n")
        f.write("ns IN A 198.18.0.53\n")
    for i, host in enumerate(hosts):
        tld = host.rsplit(".", 1)[1]
        rel = host[: -len(tld) - 1]
        files[tld].write(f"{rel} IN A 198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}\n")
        if i % 3 == 0:
            files[tld].write(f"{rel} IN AAAA 2001:db8:{i >> 16:x}:{i & 0xffff:x}::1\n")
    for f in files.values():
        f.close()

    # The query mix: DISTINCT names, Zipf-like weights 1/rank.
    pool = rng.sample(hosts, distinct)
    weights = [1.0 / (rank + 1) for rank in range(distinct)]
    drawn = rng.choices(range(distinct), weights=weights, k=queries)
    counts = [0] * distinct
    for d in drawn:
        counts[d] += 1
    # Block names (in random order) until BLOCKED_PERCENT of the query lines are covered.
    budget = queries * blocked_pct // 100
    blocked = []
    covered = 0
    for idx in rng.sample(range(distinct), distinct):
        if covered >= budget:
            break
        if counts[idx] == 0 or covered + counts[idx] > budget * 1.02:
            continue
        blocked.append(pool[idx])
        covered += counts[idx]
    with open(os.path.join(out, "queries.txt"), "w") as q:
        for d in drawn:
            q.write(f"{pool[d]} {'AAAA' if rng.random() < 0.1 else 'A'}\n")

    # The policy: rules for the blocked names first, then names that do not exist.
    with open(os.path.join(out, "rules.txt"), "w") as r:
        written = 0
        for host in blocked:
            r.write(f"exact:{host}\n" if written % 2 == 0 else f"{host}\n")
            written += 1
        i = 0
        while written < rules:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 5)))
            name = f"{word}-r{i}.{rng.choice(TLDS + ['com', 'net', 'org', 'info', 'xyz'])}"
            if rng.random() < 0.3:
                name = rng.choice(["www.", "login.", "cdn.", "m."]) + name
            r.write(f"exact:{name}\n" if rng.random() < 0.55 else f"{name}\n")
            written += 1
            i += 1
    with open(os.path.join(out, "summary.txt"), "w") as s:
        s.write(f"zone names {names} in {len(TLDS)} zones; rules {rules} ({len(blocked)} cover query names); "
                f"queries {queries} over {distinct} names, {covered} ({100.0 * covered / queries:.1f}%) blocked\n")


if __name__ == "__main__":
    main()
