//! TSIG (RFC 8945) with HMAC-SHA256: verifying a secondary's signed requests and signing the
//! answers, message by message for a multi-message transfer (section 5.3.1).
//!
//! Only `hmac-sha256` (the algorithm RFC 8945 section 6 says to implement) and one key are
//! supported. A request signed with an unknown key or a bad MAC gets NOTAUTH with an unsigned
//! TSIG record carrying BADKEY or BADSIG (section 5.2); one outside the time window gets
//! NOTAUTH with BADTIME, signed (section 5.2.3).

use std::time::{SystemTime, UNIX_EPOCH};

use bawaba_policy::DomainName;
use bawaba_wire::dns::{Class, Message, Rcode, Type};
use sha2::Sha256;

use super::zone::name_wire;
use super::XfrError;

/// The TSIG record type (RFC 8945 section 4.2).
pub const TSIG: Type = Type(250);

/// TSIG error codes (RFC 8945 section 3).
const BADSIG: u16 = 16;
const BADKEY: u16 = 17;
const BADTIME: u16 = 18;

/// Allowed clock difference, in seconds (RFC 8945 section 10 recommends 300).
const FUDGE: u16 = 300;

/// A shared secret for `hmac-sha256`.
#[derive(Clone)]
pub struct TsigKey {
    name: Vec<u8>,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("TsigKey").field("name", &self.name).finish_non_exhaustive()
    }
}

impl TsigKey {
    /// A key named `name` with the base64 `secret` (as in BIND's `key` statement).
    pub fn new(name: &DomainName, secret_base64: &str) -> Result<TsigKey, XfrError> {
        let secret = base64_decode(secret_base64).ok_or(XfrError::BadKey { why: "the secret is not base64" })?;
        if secret.is_empty() {
            return Err(XfrError::BadKey { why: "the secret is empty" });
        }
        Ok(TsigKey { name: name_wire(name.as_str())?, secret })
    }
}

/// The algorithm name `hmac-sha256.` in wire form.
const HMAC_SHA256: &[u8] = b"\x0bhmac-sha256\x00";

/// What a signed request left for signing the answer.
#[derive(Debug, Clone)]
pub struct Signer {
    key: TsigKey,
    /// The MAC the next message's MAC covers: the request's, then each answer's.
    prior_mac: Vec<u8>,
    first: bool,
    error: u16,
    /// The request's time, echoed in a BADTIME answer (RFC 8945 section 5.2.3).
    time: u64,
}

/// The outcome of checking a request.
#[derive(Debug)]
pub enum Checked {
    /// No TSIG record.
    Unsigned,
    /// A valid signature: sign the answer with this.
    Signed(Signer),
    /// A signature that does not verify: answer NOTAUTH with this (already-built) message.
    Rejected(Vec<u8>),
}

/// Checks the TSIG record of `query` against `key` (RFC 8945 section 5.2); without a key, any
/// TSIG record is from a key we do not know.
pub fn check(query: &Message<'_>, key: Option<&TsigKey>) -> Checked {
    let Some(record) = query.additional().last().filter(|r| r.rtype == TSIG) else { return Checked::Unsigned };
    let bytes = query.bytes();
    let start = record.name.offset();
    let mut owner = Vec::with_capacity(64);
    record.name.write_wire_lower(&mut owner);
    let Some(rdata) = Rdata::parse(record.rdata) else {
        return Checked::Rejected(reject(query, start, BADSIG, &owner, None));
    };
    let key = match key {
        Some(key) if owner == key.name && rdata.algorithm.eq_ignore_ascii_case(HMAC_SHA256) => key,
        _ => return Checked::Rejected(reject(query, start, BADKEY, &owner, None)),
    };
    // The request as it was before signing: TSIG removed, ARCOUNT one less, the original id.
    let mut unsigned = bytes[..start].to_vec();
    unsigned[0..2].copy_from_slice(&rdata.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([unsigned[10], unsigned[11]]).saturating_sub(1);
    unsigned[10..12].copy_from_slice(&arcount.to_be_bytes());
    let mac = hmac_sha256(
        &key.secret,
        &[&unsigned, &variables(&key.name, rdata.time, rdata.fudge, rdata.error, rdata.other)],
    );
    // RFC 8945 section 5.2.2.1: a truncated MAC must keep at least half of it and 10 octets.
    let len = rdata.mac.len();
    if len < 16 || len > mac.len() || !constant_time_eq(&mac[..len], rdata.mac) {
        return Checked::Rejected(reject(query, start, BADSIG, &owner, None));
    }
    let signer = Signer { key: key.clone(), prior_mac: rdata.mac.to_vec(), first: true, error: 0, time: rdata.time };
    let now = now();
    if now.abs_diff(rdata.time) > u64::from(rdata.fudge) {
        let mut signer = signer;
        signer.error = BADTIME;
        return Checked::Rejected(reject(query, start, BADTIME, &owner, Some(signer)));
    }
    Checked::Signed(signer)
}

impl Signer {
    /// Appends a TSIG record signing `message` (RFC 8945 section 5.3; section 5.3.1 for the
    /// second and later messages of a transfer: prior MAC, message, timers only).
    pub fn sign(&mut self, message: &mut Vec<u8>) {
        let time = if self.error == BADTIME { self.time } else { now() };
        let mut prior = Vec::with_capacity(2 + self.prior_mac.len());
        prior.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        prior.extend_from_slice(&self.prior_mac);
        let vars = if self.first {
            let other = if self.error == BADTIME { now_48(now()).to_vec() } else { Vec::new() };
            variables(&self.key.name, time, FUDGE, self.error, &other)
        } else {
            timers(time, FUDGE)
        };
        let mac = hmac_sha256(&self.key.secret, &[&prior, message, &vars]);
        let other = if self.first && self.error == BADTIME { now_48(now()).to_vec() } else { Vec::new() };
        append_tsig(message, &self.key.name, time, &mac, self.error, &other);
        self.prior_mac = mac.to_vec();
        self.first = false;
    }
}

/// A NOTAUTH answer with a TSIG record carrying `error`: unsigned for BADKEY and BADSIG, signed
/// for BADTIME (RFC 8945 section 5.2).
fn reject(query: &Message<'_>, tsig_start: usize, error: u16, key_name: &[u8], signer: Option<Signer>) -> Vec<u8> {
    let bytes = query.bytes();
    // Header and question only; the question ends where the first record section starts.
    let question_end = 12 + query.question_bytes().len();
    let mut out = bytes[..question_end.min(tsig_start)].to_vec();
    out[2] = 0x80 | (bytes[2] & 0x78); // QR, the request's opcode
    out[3] = Rcode::NOTAUTH.0;
    out[6..12].fill(0);
    match signer {
        Some(mut signer) => signer.sign(&mut out),
        None => append_tsig(&mut out, key_name, now(), &[], error, &[]),
    }
    out
}

/// Appends the TSIG record and bumps ARCOUNT.
fn append_tsig(message: &mut Vec<u8>, key_name: &[u8], time: u64, mac: &[u8], error: u16, other: &[u8]) {
    let id = [message[0], message[1]];
    let mut rdata = Vec::with_capacity(64 + mac.len());
    rdata.extend_from_slice(HMAC_SHA256);
    rdata.extend_from_slice(&now_48(time));
    rdata.extend_from_slice(&FUDGE.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&id);
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&(other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(other);
    message.extend_from_slice(key_name);
    message.extend_from_slice(&TSIG.0.to_be_bytes());
    message.extend_from_slice(&Class::ANY.0.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend_from_slice(&rdata);
    let arcount = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
}

/// The TSIG variables (RFC 8945 section 4.3.3): key name, class ANY, TTL 0, algorithm, time
/// signed, fudge, error, other data.
fn variables(key_name: &[u8], time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(key_name);
    v.extend_from_slice(&Class::ANY.0.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(HMAC_SHA256);
    v.extend_from_slice(&timers(time, fudge));
    v.extend_from_slice(&error.to_be_bytes());
    v.extend_from_slice(&(other.len() as u16).to_be_bytes());
    v.extend_from_slice(other);
    v
}

/// Time signed (48 bits) and fudge.
fn timers(time: u64, fudge: u16) -> Vec<u8> {
    let mut v = now_48(time).to_vec();
    v.extend_from_slice(&fudge.to_be_bytes());
    v
}

fn now_48(time: u64) -> [u8; 6] {
    let b = time.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The TSIG RDATA fields (RFC 8945 section 4.2).
struct Rdata<'a> {
    algorithm: &'a [u8],
    time: u64,
    fudge: u16,
    mac: &'a [u8],
    original_id: u16,
    error: u16,
    other: &'a [u8],
}

impl<'a> Rdata<'a> {
    fn parse(rdata: &'a [u8]) -> Option<Rdata<'a>> {
        // The algorithm name is never compressed (RFC 8945 section 4.2).
        let mut pos = 0;
        loop {
            let len = usize::from(*rdata.get(pos)?);
            if len & 0xc0 != 0 {
                return None;
            }
            pos += 1 + len;
            if len == 0 {
                break;
            }
        }
        let algorithm = rdata.get(..pos)?;
        let u16_at = |at: usize| rdata.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let t = rdata.get(pos..pos + 6)?;
        let time = t.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let fudge = u16_at(pos + 6)?;
        let mac_len = usize::from(u16_at(pos + 8)?);
        let mac = rdata.get(pos + 10..pos + 10 + mac_len)?;
        let at = pos + 10 + mac_len;
        let original_id = u16_at(at)?;
        let error = u16_at(at + 2)?;
        let other_len = usize::from(u16_at(at + 4)?);
        let other = rdata.get(at + 6..at + 6 + other_len)?;
        Some(Rdata { algorithm, time, fudge, mac, original_id, error, other })
    }
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts` (the `hmac` crate does the work).
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes keys of any length, so this constructor cannot fail.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else { return [0; 32] };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 (RFC 4648 section 4), padding optional, whitespace ignored.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let got: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    /// Signs `query` as a client does (RFC 8945 section 5.1).
    fn sign_request(query: &mut Vec<u8>, key: &TsigKey, time: u64) -> Vec<u8> {
        let mac = hmac_sha256(&key.secret, &[query, &variables(&key.name, time, FUDGE, 0, &[])]);
        append_tsig(query, &key.name, time, &mac, 0, &[]);
        mac.to_vec()
    }

    fn key() -> TsigKey {
        TsigKey::new(&DomainName::parse("bawaba-xfr").unwrap(), "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==").unwrap()
    }

    #[test]
    fn verifies_signed_requests_and_refuses_bad_ones() {
        use bawaba_wire::dns::build_query;
        let key = key();
        let mut q = build_query(9, "rpz.gateway.example", Type::AXFR, false, None);
        sign_request(&mut q, &key, now());
        let Checked::Signed(mut signer) = check(&Message::parse(&q).unwrap(), Some(&key)) else {
            panic!("not verified")
        };
        // The answer carries a TSIG record that a client verifies with the request MAC.
        let mut answer = q[..q.len()].to_vec();
        answer.truncate(12 + Message::parse(&q).unwrap().question_bytes().len());
        answer[2] |= 0x80;
        answer[10..12].fill(0);
        signer.sign(&mut answer);
        let m = Message::parse(&answer).unwrap();
        assert_eq!(m.additional().last().unwrap().rtype, TSIG);

        // A flipped bit in the signed part: BADSIG; another key: BADKEY; an old time: BADTIME.
        let mut bad = q.clone();
        bad[13] ^= 0x20;
        let rejected = |q: &[u8], key: Option<&TsigKey>| match check(&Message::parse(q).unwrap(), key) {
            Checked::Rejected(r) => {
                let m = Message::parse(&r).unwrap();
                assert_eq!(m.header().rcode(), Rcode::NOTAUTH);
                let tsig = Rdata::parse(m.additional().last().unwrap().rdata).unwrap();
                tsig.error
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(rejected(&bad, Some(&key)), BADSIG);
        assert_eq!(rejected(&q, None), BADKEY);
        let other = TsigKey::new(&DomainName::parse("other").unwrap(), "c2VjcmV0").unwrap();
        assert_eq!(rejected(&q, Some(&other)), BADKEY);
        let mut old = build_query(9, "rpz.gateway.example", Type::AXFR, false, None);
        sign_request(&mut old, &key, now() - 3600);
        assert_eq!(rejected(&old, Some(&key)), BADTIME);
        // Unsigned stays unsigned.
        let plain = build_query(9, "rpz.gateway.example", Type::SOA, false, None);
        assert!(matches!(check(&Message::parse(&plain).unwrap(), Some(&key)), Checked::Unsigned));
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert!(base64_decode("Zm9v!").is_none());
    }
}
