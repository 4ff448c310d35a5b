//! The zone in wire form: each record encoded once when a policy version is put in force
//! (RFC 1035 section 4.1.3, names uncompressed and lowercase), indexed by owner name for
//! authoritative answers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bawaba_formats::{RecordData, ZoneRecord};
use bawaba_policy::DomainName;
use bawaba_wire::dns::{Builder, Class, Section, Type};

use super::XfrError;

/// One record in wire form: the uncompressed lowercase owner, then TYPE, CLASS, TTL, RDLENGTH and
/// RDATA (RFC 1035 section 4.1.3). Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WireRecord {
    bytes: Arc<[u8]>,
    owner_len: usize,
}

impl WireRecord {
    fn new(owner: &[u8], rtype: Type, ttl: u32, rdata: &[u8]) -> Result<WireRecord, XfrError> {
        let rdlen = u16::try_from(rdata.len())
            .map_err(|_| XfrError::BadName { name: format!("{owner:?}"), why: "RDATA longer than 65535 octets" })?;
        let mut bytes = Vec::with_capacity(owner.len() + 10 + rdata.len());
        bytes.extend_from_slice(owner);
        bytes.extend_from_slice(&rtype.0.to_be_bytes());
        bytes.extend_from_slice(&Class::IN.0.to_be_bytes());
        bytes.extend_from_slice(&ttl.to_be_bytes());
        bytes.extend_from_slice(&rdlen.to_be_bytes());
        bytes.extend_from_slice(rdata);
        Ok(WireRecord { bytes: bytes.into(), owner_len: owner.len() })
    }

    /// The owner name in wire form.
    pub fn owner(&self) -> &[u8] {
        &self.bytes[..self.owner_len]
    }

    /// The type.
    pub fn rtype(&self) -> Type {
        let at = self.owner_len;
        Type(u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]]))
    }

    /// The TTL.
    pub fn ttl(&self) -> u32 {
        let at = self.owner_len + 4;
        u32::from_be_bytes([self.bytes[at], self.bytes[at + 1], self.bytes[at + 2], self.bytes[at + 3]])
    }

    /// The RDATA.
    pub fn rdata(&self) -> &[u8] {
        &self.bytes[self.owner_len + 10..]
    }

    /// The whole record.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(super) fn push_to(&self, b: &mut Builder, section: Section, owner: Option<&[u8]>) {
        b.push_record_raw(section, owner.unwrap_or(self.owner()), self.rtype(), Class::IN, self.ttl(), self.rdata());
    }
}

/// The zone in wire form, ready to transfer and to answer from.
#[derive(Debug)]
pub struct WireZone {
    pub(super) origin: Box<[u8]>,
    pub(super) serial: u32,
    /// SOA first, then every other record in zone order.
    pub(super) records: Vec<WireRecord>,
    /// Owner name -> indices into `records`.
    pub(super) owners: HashMap<Box<[u8]>, Vec<usize>>,
    /// Every owner name and every name between it and the origin (empty non-terminals exist,
    /// RFC 4592 section 2.2.2).
    pub(super) names: HashSet<Box<[u8]>>,
}

impl WireZone {
    /// Prepares `records` (as [`bawaba_formats::rpz_records`] returns them: SOA first) for the
    /// zone `origin`.
    pub fn new(origin: &DomainName, records: &[ZoneRecord]) -> Result<WireZone, XfrError> {
        let serial = match records.first().map(|r| &r.data) {
            Some(RecordData::Soa(soa)) => soa.serial,
            _ => return Err(XfrError::NoSoa),
        };
        let origin_wire = name_wire(origin.as_str())?;
        let mut wire = Vec::with_capacity(records.len());
        for record in records {
            let owner = if record.owner.is_empty() {
                origin_wire.clone()
            } else {
                name_wire(&format!("{}.{}", record.owner, origin.as_str()))?
            };
            let (rtype, rdata) = rdata_wire(&record.data)?;
            wire.push(WireRecord::new(&owner, rtype, record.ttl, &rdata)?);
        }
        let mut owners: HashMap<Box<[u8]>, Vec<usize>> = HashMap::new();
        let mut names: HashSet<Box<[u8]>> = HashSet::new();
        for (i, r) in wire.iter().enumerate() {
            owners.entry(r.owner().into()).or_default().push(i);
            let mut name = r.owner();
            while name.len() >= origin_wire.len() && names.insert(name.into()) {
                match name.first() {
                    Some(&len) if len > 0 => name = &name[1 + usize::from(len)..],
                    _ => break,
                }
            }
        }
        Ok(WireZone { origin: origin_wire.into(), serial, records: wire, owners, names })
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The records: SOA first.
    pub fn records(&self) -> &[WireRecord] {
        &self.records
    }

    pub(super) fn soa(&self) -> &WireRecord {
        // `new` refuses records without a leading SOA.
        &self.records[0]
    }
}

/// The wire form of a dotted name (relative labels already joined with the origin); `.` and the
/// empty string are the root.
pub(super) fn name_wire(text: &str) -> Result<Vec<u8>, XfrError> {
    let mut out = Vec::with_capacity(text.len() + 2);
    for label in text.split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return Err(XfrError::BadName { name: text.into(), why: "a label is longer than 63 octets" });
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    if out.len() > bawaba_wire::dns::MAX_NAME_WIRE {
        return Err(XfrError::BadName { name: text.into(), why: "longer than 255 octets" });
    }
    Ok(out)
}

/// TYPE and RDATA of a zone record (RFC 1035 section 3.3 and 3.4, RFC 3596 section 2.2).
fn rdata_wire(data: &RecordData) -> Result<(Type, Vec<u8>), XfrError> {
    Ok(match data {
        RecordData::Soa(soa) => {
            let mut v = name_wire(&soa.mname)?;
            v.extend(name_wire(&soa.rname)?);
            for n in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                v.extend_from_slice(&n.to_be_bytes());
            }
            (Type::SOA, v)
        }
        RecordData::Ns(name) => (Type::NS, name_wire(name)?),
        RecordData::Cname(name) => (Type::CNAME, name_wire(name)?),
        RecordData::A(a) => (Type::A, a.octets().to_vec()),
        RecordData::Aaaa(a) => (Type::AAAA, a.octets().to_vec()),
        other => return Err(XfrError::BadName { name: other.type_name().into(), why: "unsupported record type" }),
    })
}

pub(super) fn soa_serial(soa: &WireRecord) -> u32 {
    // SOA RDATA ends with SERIAL REFRESH RETRY EXPIRE MINIMUM, 4 octets each.
    let rdata = soa.rdata();
    let at = rdata.len().saturating_sub(20);
    rdata.get(at..at + 4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
