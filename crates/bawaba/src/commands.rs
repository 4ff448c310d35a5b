//! Carries out each subcommand by calling the library crates.

use std::net::IpAddr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bawaba_policy::{AllowId, Match, Order, OrderId, OrderStatus, PolicySnapshot, RuleId, Ruleset, Selector, Verdict};
use bawaba_store::{NewOrder, Store};
use serde::Serialize;

use crate::cli::{AllowCommand, AuditCommand, Cli, Command, OrderCommand, PolicyCommand, RuleCommand};
use crate::config::Config;
use crate::output::{self, date, json, now, table, when};
use crate::policy_files;

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> Result<i32> {
    let config = Config::load(cli.config.as_deref())?;
    let actor = cli
        .actor
        .or_else(|| std::env::var("BAWABA_ACTOR").ok())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|a| !a.trim().is_empty());
    let ctx = Ctx { config, actor };
    match cli.command {
        Command::Init => ctx.init(),
        Command::Serve => {
            // A bootstrap publication (no bundle yet) is recorded under this name unless --actor says otherwise.
            let actor = ctx.actor.clone().or_else(|| Some("bawaba-serve".to_string()));
            crate::serve::serve(&Ctx { config: ctx.config, actor })
        }
        Command::Order(c) => ctx.order(c),
        Command::Rule(c) => ctx.rule(c),
        Command::Allow(c) => ctx.allow(c),
        Command::Policy(c) => ctx.policy(c),
        Command::Audit(c) => ctx.audit(c),
        Command::Inspect(args) => crate::inspect::inspect(&ctx, &args),
        Command::Attack(crate::cli::AttackCommand::List(j)) => crate::attacks::list(&ctx, j.json),
        Command::User(c) => ctx.user(c),
        Command::Mitigation(c) => crate::remote::mitigation(&ctx, c),
        Command::Exporter(crate::cli::ExporterCommand::List { token, json }) => {
            crate::remote::exporters(&ctx, token, json)
        }
    }
}

/// A random password of 20 characters from a 32-letter alphabet (100 bits).
fn one_time_password() -> Result<String> {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789-";
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| ALPHABET[(*b & 31) as usize] as char).collect())
}

pub(crate) struct Ctx {
    pub config: Config,
    actor: Option<String>,
}

impl Ctx {
    /// Who is acting; required by every command that changes the policy.
    pub fn actor(&self) -> Result<&str> {
        match &self.actor {
            Some(a) => Ok(a),
            None => bail!("no actor: pass --actor NAME or set BAWABA_ACTOR (the audit log records who acts)"),
        }
    }

    pub fn store(&self) -> Result<Store> {
        let db = self.config.database();
        if !db.exists() {
            bail!("no database at {}: run `bawaba init` first (with the same --config)", db.display());
        }
        Store::open(&db, self.config.store_config()).with_context(|| format!("opening {}", db.display()))
    }

    /// Creates the data directory, database and key pair (keeping what exists).
    pub fn init(&self) -> Result<i32> {
        let data = &self.config.store.data_dir;
        std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
        std::fs::create_dir_all(self.config.bundle_dir())?;
        let db = self.config.database();
        let existed = db.exists();
        Store::open(&db, self.config.store_config()).with_context(|| format!("creating {}", db.display()))?;
        println!("{} {}", if existed { "database   " } else { "created    " }, db.display());
        let key = self.config.signing_key();
        if key.exists() {
            println!("signing key {} (kept)", key.display());
        } else {
            let dir = self.config.key_dir();
            if key != dir.join(bawaba_bundle::SIGNING_KEY_FILE) {
                bail!(
                    "signing key {} does not exist; create it, or unset bundle.signing_key to let init make one",
                    key.display()
                );
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            bawaba_bundle::write_key_pair(&dir)
                .with_context(|| format!("writing the bundle signing key pair to {}", dir.display()))?;
            println!("created     {} (private, mode 0600)", key.display());
            println!(
                "created     {} (give this to enforcement points)",
                dir.join(bawaba_bundle::VERIFYING_KEY_FILE).display()
            );
        }
        println!("bundles     {}", self.config.bundle_dir().display());
        let mut store = self.store()?;
        if store.user_count()? == 0 {
            let password = one_time_password()?;
            store.create_user("bawaba-init", "admin", bawaba_store::Role::Admin, &password, now())?;
            println!("created     console user admin, one-time password: {password}");
            println!("            (shown once; `bawaba user password admin` sets a new one)");
        }
        Ok(0)
    }

    // ---- users --------------------------------------------------------------------------------

    fn user(&self, cmd: crate::cli::UserCommand) -> Result<i32> {
        use crate::cli::UserCommand as U;
        let mut store = self.store()?;
        let role = |r: &str| r.parse::<bawaba_store::Role>().map_err(|e| anyhow::anyhow!("{e}"));
        match cmd {
            U::Add { name, role: r } => {
                let password = one_time_password()?;
                let user = store.create_user(self.actor()?, &name, role(&r)?, &password, now())?;
                println!("created {} ({}), one-time password: {password}", user.name, user.role);
            }
            U::List(j) => {
                let users = store.users()?;
                if j.json {
                    json(&users)?;
                } else {
                    let rows: Vec<Vec<String>> = users
                        .iter()
                        .map(|u| {
                            vec![
                                u.name.clone(),
                                u.role.to_string(),
                                if u.disabled { "disabled".into() } else { "enabled".into() },
                                date(u.created_at),
                            ]
                        })
                        .collect();
                    table(&["NAME", "ROLE", "STATE", "CREATED"], &rows);
                }
            }
            U::Password { name } => {
                let password = one_time_password()?;
                store.set_password(self.actor()?, &name, &password, now())?;
                println!("new one-time password for {name}: {password}");
            }
            U::Role { name, role: r } => {
                let user = store.set_role(self.actor()?, &name, role(&r)?, now())?;
                println!("{} is now {}", user.name, user.role);
            }
            U::Disable { name } => {
                store.disable_user(self.actor()?, &name, now())?;
                println!("{name} disabled; its sessions and tokens no longer work");
            }
            U::Token { name, label } => {
                let (secret, token) = store.create_token(self.actor()?, &name, &label, now())?;
                println!("token {} for {name}: {secret}", token.id.0);
                println!("(shown once; send it as `Authorization: Bearer {secret}`)");
            }
        }
        Ok(0)
    }

    // ---- orders -------------------------------------------------------------------------------

    fn order(&self, cmd: OrderCommand) -> Result<i32> {
        let mut store = self.store()?;
        let t = now();
        match cmd {
            OrderCommand::Add(a) => {
                let new = NewOrder {
                    authority: a.authority,
                    reference: a.reference,
                    issued_at: output::parse_time(&a.issued, t)?,
                    effective_from: output::parse_time(&a.effective_from, t)?,
                    expires_at: output::parse_time(&a.expires, t)?,
                    category: a.category,
                    summary: a.summary,
                    publishable: !a.private,
                    appeal_contact: a.appeal_contact,
                };
                let o = store.add_order(self.actor()?, new, t)?;
                println!(
                    "order {} recorded as draft ({}); add rules, then a second person approves it",
                    o.id, o.reference
                );
            }
            OrderCommand::Approve { id } => {
                let o = store.approve_order(self.actor()?, OrderId(id), t)?;
                println!("order {} approved by {}; status now {}", o.id, self.actor()?, o.status_at(t));
            }
            OrderCommand::Revoke { id, reason } => {
                let o = store.revoke_order(self.actor()?, OrderId(id), &reason, t)?;
                println!("order {} revoked; its rules stop applying at the next compile/publish", o.id);
            }
            OrderCommand::List(j) => {
                let orders = store.orders()?;
                let counts = store.rule_counts()?;
                if j.json {
                    let list: Vec<_> =
                        orders.iter().map(|o| OrderView::new(o, t, counts.get(&o.id).copied().unwrap_or(0))).collect();
                    return json(&list).map(|_| 0);
                }
                let rows: Vec<Vec<String>> = orders
                    .iter()
                    .map(|o| {
                        vec![
                            o.id.to_string(),
                            o.status_at(t).to_string(),
                            o.reference.clone(),
                            o.authority.clone(),
                            o.category.to_string(),
                            date(o.expires_at),
                            counts.get(&o.id).copied().unwrap_or(0).to_string(),
                        ]
                    })
                    .collect();
                table(&["ID", "STATUS", "REFERENCE", "AUTHORITY", "CATEGORY", "EXPIRES", "RULES"], &rows);
            }
            OrderCommand::Show { id, json: as_json } => {
                let o = store.order(OrderId(id))?;
                let rules = store.rules(Some(o.id))?;
                if as_json {
                    #[derive(Serialize)]
                    struct Show<'a> {
                        #[serde(flatten)]
                        order: OrderView<'a>,
                        rules: &'a [bawaba_policy::Rule],
                    }
                    return json(&Show { order: OrderView::new(&o, t, rules.len() as i64), rules: &rules }).map(|_| 0);
                }
                print_order(&o, t);
                println!("rules        {}", rules.len());
                for r in rules.iter().take(50) {
                    let forced = r.forced.as_deref().map(|f| format!("  (forced: {f})")).unwrap_or_default();
                    println!("  {:>6}  {:<10} {}{forced}", r.id, r.action, r.selector);
                }
                if rules.len() > 50 {
                    println!("  ... {} more (bawaba rule list --order {})", rules.len() - 50, o.id);
                }
            }
        }
        Ok(0)
    }

    // ---- rules --------------------------------------------------------------------------------

    fn rule(&self, cmd: RuleCommand) -> Result<i32> {
        let mut store = self.store()?;
        let t = now();
        match cmd {
            RuleCommand::Add { order, action, force, reason, selectors } => {
                let force_reason = if force { reason.as_deref() } else { None };
                for text in &selectors {
                    let selector: Selector = text.parse()?;
                    let rule = store.add_rule(self.actor()?, OrderId(order), &selector, action, force_reason, t)?;
                    println!("rule {} added: {} {} (order {})", rule.id, rule.action, rule.selector, order);
                }
            }
            RuleCommand::Remove { id, reason } => {
                let r = store.remove_rule(self.actor()?, RuleId(id), &reason, t)?;
                println!("rule {} removed: {} {}", r.id, r.action, r.selector);
            }
            RuleCommand::List { order, json: as_json } => {
                let rules = store.rules(order.map(OrderId))?;
                if as_json {
                    return json(&rules).map(|_| 0);
                }
                let rows: Vec<Vec<String>> = rules
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.order.to_string(),
                            r.action.to_string(),
                            r.selector.to_string(),
                            r.forced.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["ID", "ORDER", "ACTION", "SELECTOR", "FORCED"], &rows);
            }
        }
        Ok(0)
    }

    // ---- allowlist ----------------------------------------------------------------------------

    fn allow(&self, cmd: AllowCommand) -> Result<i32> {
        let mut store = self.store()?;
        let t = now();
        match cmd {
            AllowCommand::Add { selector, reason } => {
                let e = store.add_allow(self.actor()?, &selector.parse()?, &reason, t)?;
                println!("allow entry {} added: {} ({})", e.id, e.selector, e.reason);
            }
            AllowCommand::Remove { id, reason } => {
                let e = store.remove_allow(self.actor()?, AllowId(id), &reason, t)?;
                println!("allow entry {} removed: {}", e.id, e.selector);
            }
            AllowCommand::List(j) => {
                let list = store.allowlist()?;
                if j.json {
                    return json(&list).map(|_| 0);
                }
                let rows: Vec<Vec<String>> =
                    list.iter().map(|e| vec![e.id.to_string(), e.selector.to_string(), e.reason.clone()]).collect();
                table(&["ID", "SELECTOR", "REASON"], &rows);
            }
        }
        Ok(0)
    }

    // ---- policy -------------------------------------------------------------------------------

    fn policy(&self, cmd: PolicyCommand) -> Result<i32> {
        match cmd {
            PolicyCommand::Import { order, format, action, origin, json, file } => {
                policy_files::import(self, OrderId(order), format.as_deref(), action, origin.as_deref(), json, &file)
            }
            PolicyCommand::Export { out } => policy_files::export(self, out.as_deref()),
            PolicyCommand::Publish(j) => policy_files::publish(self, j.json),
            PolicyCommand::Verify { key, json, file } => policy_files::verify(self, &key, json, &file),
            PolicyCommand::Compile(j) => {
                let store = self.store()?;
                let start = Instant::now();
                let snapshot = store.snapshot(now())?;
                let read = start.elapsed();
                let ruleset = snapshot.compile();
                let total = start.elapsed();
                let stats = ruleset.stats();
                if j.json {
                    #[derive(Serialize)]
                    struct Compiled<T: Serialize> {
                        read_ms: f64,
                        compile_ms: f64,
                        #[serde(flatten)]
                        stats: T,
                    }
                    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
                    return json(&Compiled { read_ms: ms(read), compile_ms: ms(total - read), stats }).map(|_| 0);
                }
                println!(
                    "compiled {} orders: {} domain rules, {} IPv4 and {} IPv6 prefixes, {} allow entries",
                    stats.orders, stats.domain_rules, stats.ipv4_rules, stats.ipv6_rules, stats.allow_entries
                );
                println!(
                    "read from store in {:.0} ms, compiled in {:.0} ms, {:.1} MiB ({} duplicates ignored)",
                    read.as_secs_f64() * 1e3,
                    (total - read).as_secs_f64() * 1e3,
                    stats.heap_bytes as f64 / 1_048_576.0,
                    stats.duplicates
                );
                Ok(0)
            }
            PolicyCommand::Check { bundle, json: as_json, target } => {
                let snapshot = match bundle {
                    Some(path) => policy_files::load_bundle(self, &[], &path)?,
                    None => self.store()?.snapshot(now())?,
                };
                let ruleset = snapshot.compile();
                check(&snapshot, &ruleset, &target, as_json)
            }
        }
    }

    // ---- audit --------------------------------------------------------------------------------

    fn audit(&self, cmd: AuditCommand) -> Result<i32> {
        let store = self.store()?;
        match cmd {
            AuditCommand::List { since, limit, json: as_json } => {
                let entries = store.audit_entries(since, limit)?;
                if as_json {
                    return json(&entries).map(|_| 0);
                }
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.seq.to_string(),
                            when(e.at),
                            e.actor.clone(),
                            e.action.clone(),
                            e.object.clone(),
                            e.reason.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["SEQ", "AT", "ACTOR", "ACTION", "OBJECT", "REASON"], &rows);
                Ok(0)
            }
            AuditCommand::Verify(j) => {
                let pinned = store.latest_publication()?;
                let report = store.verify_audit(pinned.as_ref().map(|p| (p.audit_seq, p.audit_hash.as_str())))?;
                if j.json {
                    json(&report)?;
                } else {
                    match (&report.problem, &report.head) {
                        (None, Some((seq, hash))) => {
                            println!("audit log intact: {} entries, head {seq} {hash}", report.entries);
                            if let Some(p) = &pinned {
                                println!(
                                    "consistent with the head pinned by bundle v{} (entry {})",
                                    p.version, p.audit_seq
                                );
                            }
                        }
                        (None, None) => println!("audit log is empty"),
                        (Some(problem), _) => println!("AUDIT LOG TAMPERED: {problem}"),
                    }
                }
                Ok(if report.is_intact() { 0 } else { 1 })
            }
        }
    }
}

/// An order with its derived status, for JSON output.
#[derive(Serialize)]
struct OrderView<'a> {
    #[serde(flatten)]
    order: &'a Order,
    status_now: OrderStatus,
    rules: i64,
}

impl<'a> OrderView<'a> {
    fn new(order: &'a Order, now: i64, rules: i64) -> Self {
        OrderView { order, status_now: order.status_at(now), rules }
    }
}

fn print_order(o: &Order, now: i64) {
    println!("order        {} ({})", o.id, o.status_at(now));
    println!("authority    {}", o.authority);
    println!("reference    {}", o.reference);
    println!("category     {}", o.category);
    println!("issued       {}", date(o.issued_at));
    println!("in force     {} .. {}", when(o.effective_from), when(o.expires_at));
    println!("summary      {}", o.summary);
    println!("public       {}", if o.publishable { "yes" } else { "no (kept out of the transparency report)" });
    println!("appeal       {}", o.appeal_contact);
    println!("proposed by  {}", o.proposed_by);
    println!("approved by  {}", o.approved_by.as_deref().unwrap_or("-"));
    if let Some(r) = &o.revoked {
        println!("revoked      {} by {}: {}", when(r.at), r.by, r.reason);
    }
}

/// The answer to "is X blocked, and why?".
#[derive(Serialize)]
struct CheckAnswer<'a> {
    target: &'a str,
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<bawaba_policy::Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<Selector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow: Option<&'a bawaba_policy::AllowEntry>,
}

fn check(snapshot: &PolicySnapshot, ruleset: &Ruleset, target: &str, as_json: bool) -> Result<i32> {
    let hit: Option<Match<'_>> = match target.parse::<IpAddr>() {
        Ok(ip) => ruleset.lookup_ip(ip),
        Err(_) => ruleset
            .lookup_domain(target)
            .with_context(|| format!("{target:?} is neither an IP address nor a valid name"))?,
    };
    let mut answer = CheckAnswer {
        target,
        verdict: "not-blocked",
        action: None,
        rule: None,
        selector: None,
        order: None,
        allow: None,
    };
    if let Some(hit) = &hit {
        answer.selector = Some(hit.selector());
        match hit.verdict() {
            Verdict::Block { rule, action } => {
                answer.verdict = "blocked";
                answer.action = Some(action);
                answer.rule = Some(rule);
                answer.order = hit.order();
            }
            Verdict::Allow { allow } => {
                answer.verdict = "allowed";
                answer.allow = snapshot.allow.iter().find(|a| a.id == allow);
            }
        }
    }
    if as_json {
        json(&answer)?;
        return Ok(0);
    }
    match (answer.verdict, &answer.selector) {
        ("blocked", Some(sel)) => {
            println!("{target}: BLOCKED ({})", answer.action.map(|a| a.to_string()).unwrap_or_default());
            println!("rule         {} {}", answer.rule.map(|r| r.to_string()).unwrap_or_default(), sel);
            if let Some(o) = answer.order {
                println!("order        {} {} ({})", o.id, o.reference, o.authority);
                println!("category     {}", o.category);
                println!("expires      {}", when(o.expires_at));
                println!("appeal       {}", o.appeal_contact);
            }
        }
        ("allowed", Some(sel)) => {
            let reason = answer.allow.map(|a| a.reason.as_str()).unwrap_or("");
            println!("{target}: ALLOWED by allowlist entry {sel} ({reason})");
        }
        _ => println!("{target}: not blocked"),
    }
    Ok(0)
}
