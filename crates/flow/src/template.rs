//! The per-exporter state NetFlow v9 and IPFIX need across datagrams: templates, options
//! templates, and what options data records said about sampling and the exporter's clock.
//!
//! State is kept per (exporter address, protocol, observation domain / source id), as RFC 7011
//! section 8 and RFC 3954 section 5.1 scope template ids. The cache is plain data passed to
//! [`crate::decode`] by the caller; there is no global state. Its size is bounded by
//! [`CacheLimits`], so a hostile exporter cannot grow it without end.

use std::collections::HashMap as StdHashMap;

/// The cache's maps: looked up for every data set, so with a fast keyed hash (foldhash, seeded
/// per process) rather than SipHash.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;

use crate::ie::{InformationElement, Slot};
use crate::FlowProtocol;

/// The field length that announces a variable-length field (RFC 7011 section 7).
pub const VARIABLE_LENGTH: u16 = 65535;

/// Bounds on what a [`TemplateCache`] keeps. Templates past a bound are not stored and are
/// reported as [`crate::FlowError::TemplateLimit`]; data for them then counts as
/// template-missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most (exporter, protocol, observation domain) entries.
    pub max_domains: usize,
    /// Most templates (data and options together) per domain.
    pub max_templates_per_domain: usize,
    /// Most fields in one template.
    pub max_fields: usize,
    /// Most sampler / selector ids remembered per domain.
    pub max_samplers_per_domain: usize,
    /// Most fields of all stored templates together: bounds the cache's memory (a field
    /// specifier takes 12 bytes).
    pub max_total_fields: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_domains: 4096,
            max_templates_per_domain: 1024,
            max_fields: 512,
            max_samplers_per_domain: 256,
            max_total_fields: 1 << 20,
        }
    }
}

/// One field specifier of a template (RFC 7011 section 3.2, RFC 3954 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The information element (field type) id, without the enterprise bit.
    pub element: InformationElement,
    /// The private enterprise number for enterprise-specific elements; 0 for IANA elements.
    /// Enterprise-specific fields are skipped when decoding.
    pub enterprise: u32,
    /// The field length in bytes, or [`VARIABLE_LENGTH`].
    pub length: u16,
    pub(crate) slot: Slot,
}

impl FieldSpec {
    pub(crate) fn new(element: InformationElement, enterprise: u32, length: u16, scope_v9: bool) -> FieldSpec {
        // NetFlow v9 scope field types (System, Interface, ...) are not information elements
        // (RFC 3954 section 6.1), and enterprise elements are not IANA's.
        let slot = if scope_v9 || enterprise != 0 { Slot::Skip } else { Slot::of(element, length) };
        FieldSpec { element, enterprise, length, slot }
    }

    /// True for a variable-length field.
    pub fn is_variable(&self) -> bool {
        self.length == VARIABLE_LENGTH
    }
}

/// A template or options template as learned from an exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Template id (256 or more).
    pub id: u16,
    /// For an options template, how many of the first fields are scope fields; `None` for a
    /// data template.
    pub scope_fields: Option<u16>,
    fields: Box<[FieldSpec]>,
    min_record_len: usize,
    /// For templates without variable-length fields: where each field that is not skipped
    /// sits in the record, so decoding jumps straight to them.
    fixed: Option<Box<[Step]>>,
}

/// One field to read from a fixed-length record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) offset: usize,
    pub(crate) length: usize,
    pub(crate) slot: Slot,
}

impl Template {
    /// Builds a template; `None` when its records would have zero length (RFC 7011 section
    /// 3.4.1 data records have at least one field, and a zero-length record could not end).
    pub(crate) fn new(id: u16, scope_fields: Option<u16>, fields: &[FieldSpec]) -> Option<Template> {
        let min_record_len = fields.iter().map(|f| if f.is_variable() { 1 } else { usize::from(f.length) }).sum();
        let fixed = (!fields.iter().any(FieldSpec::is_variable)).then(|| {
            let mut offset = 0;
            let mut steps = Vec::new();
            for f in fields {
                let length = usize::from(f.length);
                if f.slot != Slot::Skip {
                    steps.push(Step { offset, length, slot: f.slot });
                }
                offset += length;
            }
            steps.into_boxed_slice()
        });
        (min_record_len > 0).then(|| Template { id, scope_fields, fields: fields.into(), min_record_len, fixed })
    }

    /// For a template without variable-length fields, the fields to read and where.
    pub(crate) fn fixed_steps(&self) -> Option<&[Step]> {
        self.fixed.as_deref()
    }

    /// The field specifiers, scope fields first.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// True for an options template.
    pub fn is_options(&self) -> bool {
        self.scope_fields.is_some()
    }

    /// The shortest record: fixed fields plus one length byte per variable field. Fewer bytes
    /// left in a set are padding (RFC 7011 section 3.3.1).
    pub fn min_record_len(&self) -> usize {
        self.min_record_len
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DomainKey {
    exporter: IpAddr,
    protocol: FlowProtocol,
    domain: u32,
}

/// What one exporter's observation domain has told us.
#[derive(Debug, Default)]
pub(crate) struct DomainState {
    pub(crate) templates: HashMap<u16, Template>,
    pub(crate) sampling: SamplingState,
}

/// What options data records said about sampling and the exporter's clock.
#[derive(Debug, Default)]
pub(crate) struct SamplingState {
    pub(crate) samplers: HashMap<u64, u32>,
    /// A rate from options data that named no sampler: applies to the whole domain.
    pub(crate) domain_rate: Option<u32>,
    /// systemInitTimeMilliseconds from options data: what IPFIX sysUpTime fields count from.
    pub(crate) system_init_ms: Option<u64>,
}

/// Templates and sampling state of NetFlow v9 and IPFIX exporters, plus configured sampling
/// rates for exporters whose data says nothing about sampling. See the module docs.
#[derive(Debug, Default)]
pub struct TemplateCache {
    domains: HashMap<DomainKey, DomainState>,
    configured: HashMap<IpAddr, u32>,
    limits: CacheLimits,
    /// Fields of all stored templates.
    total_fields: usize,
    /// Scratch space for parsing one template, reused so an unchanged template refresh
    /// allocates nothing.
    pub(crate) scratch: Vec<FieldSpec>,
}

impl TemplateCache {
    /// An empty cache with the default limits.
    pub fn new() -> TemplateCache {
        TemplateCache::default()
    }

    /// An empty cache with the given limits.
    pub fn with_limits(limits: CacheLimits) -> TemplateCache {
        TemplateCache { limits, ..TemplateCache::default() }
    }

    /// The limits in force.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// Sets (or with `None`, clears) the sampling rate to assume for `exporter`'s records when
    /// neither the datagram nor options data say anything. Records then carry
    /// [`crate::SamplingSource::Config`].
    pub fn set_configured_sampling(&mut self, exporter: IpAddr, rate: Option<u32>) {
        match rate.filter(|&r| r > 0) {
            Some(r) => self.configured.insert(exporter, r),
            None => self.configured.remove(&exporter),
        };
    }

    /// The configured sampling rate of `exporter`, if any.
    pub fn configured_sampling(&self, exporter: IpAddr) -> Option<u32> {
        self.configured.get(&exporter).copied()
    }

    /// A template (data or options) of `exporter`'s observation domain, if known.
    pub fn template(&self, exporter: IpAddr, protocol: FlowProtocol, domain: u32, id: u16) -> Option<&Template> {
        self.domains.get(&DomainKey { exporter, protocol, domain })?.templates.get(&id)
    }

    /// How many templates (data and options, all domains and protocols) `exporter` has.
    pub fn template_count(&self, exporter: IpAddr) -> usize {
        self.domains.iter().filter(|(k, _)| k.exporter == exporter).map(|(_, d)| d.templates.len()).sum()
    }

    /// The sampling rate options data gave for `exporter`'s domain and `sampler` id (or, with
    /// `None` or an unknown id, for the whole domain).
    pub fn sampling_rate(
        &self,
        exporter: IpAddr,
        protocol: FlowProtocol,
        domain: u32,
        sampler: Option<u64>,
    ) -> Option<u32> {
        let state = self.domains.get(&DomainKey { exporter, protocol, domain })?;
        let s = &state.sampling;
        sampler.and_then(|id| s.samplers.get(&id).copied()).or(s.domain_rate)
    }

    /// Forgets everything learned from `exporter` (for example after it restarted), keeping
    /// its configured sampling rate.
    pub fn forget_exporter(&mut self, exporter: IpAddr) {
        let total = &mut self.total_fields;
        self.domains.retain(|k, d| {
            if k.exporter == exporter {
                *total -= d.templates.values().map(|t| t.fields.len()).sum::<usize>();
            }
            k.exporter != exporter
        });
    }

    /// Fields of all stored templates together (see [`CacheLimits::max_total_fields`]).
    pub fn total_fields(&self) -> usize {
        self.total_fields
    }

    /// Withdraws template `id`, or with `None` every template, of the kind `options` says;
    /// returns how many were removed.
    pub(crate) fn withdraw(
        &mut self,
        exporter: IpAddr,
        protocol: FlowProtocol,
        domain: u32,
        id: Option<u16>,
        options: bool,
    ) -> u32 {
        let Some(state) = self.domains.get_mut(&DomainKey { exporter, protocol, domain }) else { return 0 };
        let mut removed = 0;
        let total = &mut self.total_fields;
        state.templates.retain(|&tid, t| {
            let remove = t.is_options() == options && id.is_none_or(|id| id == tid);
            if remove {
                removed += 1;
                *total -= t.fields.len();
            }
            !remove
        });
        removed
    }

    /// How many (exporter, protocol, domain) entries the cache holds.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    pub(crate) fn domain_mut(
        &mut self,
        exporter: IpAddr,
        protocol: FlowProtocol,
        domain: u32,
    ) -> Option<&mut DomainState> {
        self.domains.get_mut(&DomainKey { exporter, protocol, domain })
    }

    /// The domain's state, created if there is room.
    pub(crate) fn domain_entry(
        &mut self,
        exporter: IpAddr,
        protocol: FlowProtocol,
        domain: u32,
    ) -> Option<&mut DomainState> {
        let key = DomainKey { exporter, protocol, domain };
        if !self.domains.contains_key(&key) && self.domains.len() >= self.limits.max_domains {
            return None;
        }
        Some(self.domains.entry(key).or_default())
    }

    /// Stores the template in `self.scratch` as `id`, replacing any older definition (RFC 7011
    /// section 8.1, RFC 3954 section 5.2: a new definition replaces the old one). `Ok(false)`
    /// when the fields make no valid template; `Err(())` when a limit stops it.
    pub(crate) fn store_scratch(
        &mut self,
        exporter: IpAddr,
        protocol: FlowProtocol,
        domain: u32,
        id: u16,
        scope_fields: Option<u16>,
    ) -> Result<bool, ()> {
        let limits = self.limits;
        if self.scratch.len() > limits.max_fields {
            return Err(());
        }
        let scratch = std::mem::take(&mut self.scratch);
        let total = self.total_fields;
        let result = match self.domain_entry(exporter, protocol, domain) {
            None => Err(()),
            Some(state) => match state.templates.get(&id) {
                Some(old) if old.scope_fields == scope_fields && *old.fields == *scratch => Ok((true, total)),
                old => {
                    let old_len = old.map_or(0, |t| t.fields.len());
                    let new_total = total - old_len + scratch.len();
                    if (old.is_none() && state.templates.len() >= limits.max_templates_per_domain)
                        || new_total > limits.max_total_fields
                    {
                        Err(())
                    } else if let Some(t) = Template::new(id, scope_fields, &scratch) {
                        state.templates.insert(id, t);
                        Ok((true, new_total))
                    } else {
                        Ok((false, total))
                    }
                }
            },
        };
        self.scratch = scratch;
        result.map(|(stored, total)| {
            self.total_fields = total;
            stored
        })
    }
}
