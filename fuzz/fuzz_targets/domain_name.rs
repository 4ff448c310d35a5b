//! Domain name parsing never panics, and a parsed name re-parses to itself. The ruleset's
//! lookups agree with its naive twin (a label walk over hash maps, which shares none of the fast
//! path's reading or hashing) however a name arrives: through `lookup_domain` (the
//! word-at-a-time reader), through `DomainName::parse` and `lookup_name`, and through the batch
//! walk of `lookup_domains` (the input alone, and among neighbours that walk further or stop at
//! once).
#![no_main]
use std::sync::OnceLock;

use bawaba_policy::ruleset::naive::NaiveRuleset;
use bawaba_policy::*;
use libfuzzer_sys::fuzz_target;

fn rulesets() -> &'static (Ruleset, NaiveRuleset) {
    static RULESETS: OnceLock<(Ruleset, NaiveRuleset)> = OnceLock::new();
    RULESETS.get_or_init(|| {
        let selectors = [
            "a", "b.a", "*.c.b.a", "exact:x.y", "xn--mnchen-3ya.de", "a-b.c_d", "abcdefghijklmnop.q", "198.18.0.1",
            "0.a", "_dmarc.e.f", "zz.abcdefghijklmnop.q", "longlabel0123456789.a",
            // 24 bytes (the longest name a table slot holds) and 26 (kept in the string arena).
            "abcdefghijklmnopqrstuv.w", "*.abcdefghijklmnopqrstuvwx.y",
        ];
        let rules: Vec<(&str, Action, i64)> = selectors.iter().map(|&s| (s, Action::Nxdomain, 1)).collect();
        let orders = vec![bawaba_testkit::policy::order(1, "CFI-1", Category::Phishing, true)];
        let snapshot = bawaba_testkit::policy::snapshot(orders, &rules, &["exact:ok.b.a"]);
        (snapshot.compile(), NaiveRuleset::from_snapshot(&snapshot))
    })
}

fn answer(m: Option<Match<'_>>) -> Option<Verdict> {
    m.map(|m| m.verdict())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = DomainName::parse(text);
    if let Ok(name) = &parsed {
        let again = DomainName::parse(name.as_str()).expect("a canonical name re-parses");
        assert_eq!(&again, name);
    }
    let (rules, naive) = rulesets();
    let direct = rules.lookup_domain(text).map(answer);
    let expected = naive.lookup_domain(text).map(|m| m.map(|m| m.verdict));
    assert_eq!(direct, expected, "{text:?}");
    assert_eq!(direct, parsed.as_ref().map(|n| answer(rules.lookup_name(n))).map_err(Clone::clone), "{text:?}");
    let mut batch = Vec::new();
    rules.lookup_domains([text], &mut batch);
    assert_eq!(batch.pop().map(|a| a.map(answer)), Some(direct.clone()));
    let crowd = ["zz.zz.abcdefghijklmnop.q", text, "nope", "ok.b.a", text, "c.b.a.", "x..y"];
    rules.lookup_domains(crowd, &mut batch);
    for (i, got) in [1, 4].map(|i| (i, batch[i].clone().map(answer))) {
        assert_eq!(got, direct, "{text:?} at {i}");
    }
});
