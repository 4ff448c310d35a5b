//! The set (flowset) walk NetFlow v9 and IPFIX share: template sets, options template sets and
//! data sets, after the message header.
//!
//! The two differ in details this module keeps apart with [`Dialect`]: set ids (RFC 3954
//! section 5.1: 0 and 1; RFC 7011 section 3.3.2: 2 and 3), the options template header (v9
//! counts scope and option bytes, IPFIX counts fields), enterprise-specific fields and variable
//! lengths (IPFIX only), and template withdrawal (IPFIX only, RFC 7011 section 8.1).

use std::net::IpAddr;

use crate::cursor::Cursor;
use crate::data::{apply_options, read_record, Clock, Fields};
use crate::ie::InformationElement;
use crate::record::Emitter;
use crate::template::{FieldSpec, TemplateCache, VARIABLE_LENGTH};
use crate::{FlowError, FlowProtocol, FlowRecord, Visitor};

/// NetFlow v9 or IPFIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    V9,
    Ipfix,
}

impl Dialect {
    fn protocol(self) -> FlowProtocol {
        match self {
            Dialect::V9 => FlowProtocol::NetflowV9,
            Dialect::Ipfix => FlowProtocol::Ipfix,
        }
    }

    fn template_set(self) -> u16 {
        match self {
            Dialect::V9 => 0,
            Dialect::Ipfix => 2,
        }
    }

    fn options_set(self) -> u16 {
        match self {
            Dialect::V9 => 1,
            Dialect::Ipfix => 3,
        }
    }
}

/// The message header fields the sets need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    pub(crate) dialect: Dialect,
    pub(crate) exporter: IpAddr,
    pub(crate) domain: u32,
    pub(crate) clock: Clock,
}

/// Walks the sets in `c` (everything after the message header). A set whose length runs past
/// the message ends the walk with an error; problems inside one set are reported to the visitor
/// and the walk goes on with the next set.
pub(crate) fn decode_sets<V: Visitor>(
    msg: &Message,
    mut c: Cursor<'_>,
    cache: &mut TemplateCache,
    out: &mut Emitter<'_, V>,
) -> Result<(), FlowError> {
    let dialect = msg.dialect;
    while !c.is_empty() {
        // Some v9 exporters pad the datagram, not just each flowset, to 4 bytes.
        if c.remaining() < 4 && c.rest().iter().all(|&b| b == 0) {
            break;
        }
        let start = c.offset();
        let set_id = c.u16("set id")?;
        let length = usize::from(c.u16("set length")?);
        if length < 4 {
            return Err(FlowError::BadLength { offset: start + 2, what: "set", length });
        }
        if c.remaining() < length - 4 {
            return Err(FlowError::Truncated { offset: c.offset() + c.remaining(), what: "set" });
        }
        let set = c.sub(length - 4, "set")?;
        let result = if set_id == dialect.template_set() {
            template_set(msg, set, set_id, false, cache, out)
        } else if set_id == dialect.options_set() {
            template_set(msg, set, set_id, true, cache, out)
        } else if set_id >= 256 {
            data_set(msg, set, start, set_id, cache, out);
            Ok(())
        } else {
            // Reserved set ids (RFC 7011 section 3.3.2, RFC 3954 section 5.1).
            out.summary.skipped += 1;
            Ok(())
        };
        if let Err(e) = result {
            out.problem(&e);
        }
    }
    Ok(())
}

/// A template set or options template set (RFC 7011 sections 3.4.1 and 3.4.2, RFC 3954
/// sections 5.2 and 6.1). A template that cannot be stored is reported and the next one read;
/// one that cannot be read ends the set.
fn template_set<V: Visitor>(
    msg: &Message,
    mut set: Cursor<'_>,
    set_id: u16,
    options: bool,
    cache: &mut TemplateCache,
    out: &mut Emitter<'_, V>,
) -> Result<(), FlowError> {
    let protocol = msg.dialect.protocol();
    loop {
        // Fewer bytes than a template header, or only zeros, is padding (RFC 7011 section
        // 3.3.1, RFC 3954 section 5.2).
        if set.remaining() < 4 || set.rest().iter().all(|&b| b == 0) {
            return Ok(());
        }
        let start = set.offset();
        let id = set.u16("template id")?;
        let count = set.u16("template field count")?;
        let bad = |reason| FlowError::BadTemplate { offset: start, template_id: id, reason };

        if msg.dialect == Dialect::Ipfix && count == 0 {
            // RFC 7011 section 8.1: a field count of 0 withdraws the template; the set id as
            // template id withdraws all templates of the set's kind.
            withdraw(msg, id, set_id, options, cache, out).map_err(|()| bad("withdrawal of a reserved template id"))?;
            continue;
        }
        if id < 256 {
            return Err(bad("template id below 256"));
        }
        cache.scratch.clear();
        let scope_fields = match (msg.dialect, options) {
            (Dialect::Ipfix, false) => {
                read_fields(&mut set, count, false, cache)?;
                None
            }
            (Dialect::Ipfix, true) => {
                let scope = set.u16("scope field count")?;
                if scope == 0 || scope > count {
                    return Err(bad("scope field count is 0 or above the field count"));
                }
                read_fields(&mut set, count, false, cache)?;
                Some(scope)
            }
            (Dialect::V9, false) => {
                if count == 0 {
                    return Err(bad("no fields"));
                }
                read_fields(&mut set, count, false, cache)?;
                None
            }
            (Dialect::V9, true) => {
                // RFC 3954 section 6.1: lengths in bytes of the scope and option specifiers.
                let option_len = set.u16("option length")?;
                if count % 4 != 0 || option_len % 4 != 0 {
                    return Err(bad("scope or option length not a multiple of 4"));
                }
                let scope = count / 4;
                read_fields(&mut set, scope, true, cache)?;
                read_fields(&mut set, option_len / 4, false, cache)?;
                Some(scope)
            }
        };
        if msg.dialect == Dialect::V9 && cache.scratch.iter().any(|f| f.length == VARIABLE_LENGTH) {
            out.problem(&bad("field length 65535 in NetFlow v9"));
            continue;
        }
        match cache.store_scratch(msg.exporter, protocol, msg.domain, id, scope_fields) {
            Ok(true) => out.summary.templates += 1,
            Ok(false) => out.problem(&bad("records of zero length")),
            Err(()) => out.problem(&FlowError::TemplateLimit { offset: start, template_id: id }),
        }
    }
}

/// Reads `count` field specifiers into `cache.scratch`. IPFIX: an information element id with
/// the high bit set is enterprise-specific and followed by a 4-byte private enterprise number
/// (RFC 7011 section 3.2). NetFlow v9 has no enterprise bit.
fn read_fields(set: &mut Cursor<'_>, count: u16, scope_v9: bool, cache: &mut TemplateCache) -> Result<(), FlowError> {
    for _ in 0..count {
        let raw = set.u16("field type")?;
        let length = set.u16("field length")?;
        let spec = if scope_v9 {
            FieldSpec::new(InformationElement(raw), 0, length, true)
        } else if raw & 0x8000 != 0 {
            let pen = set.u32("enterprise number")?;
            FieldSpec::new(InformationElement(raw & 0x7fff), pen, length, false)
        } else {
            FieldSpec::new(InformationElement(raw), 0, length, false)
        };
        cache.scratch.push(spec);
    }
    Ok(())
}

/// Removes one template, or all of a kind. `Err` for a reserved id other than the set id.
fn withdraw<V: Visitor>(
    msg: &Message,
    id: u16,
    set_id: u16,
    options: bool,
    cache: &mut TemplateCache,
    out: &mut Emitter<'_, V>,
) -> Result<(), ()> {
    if id < 256 && id != set_id {
        return Err(());
    }
    let which = (id != set_id).then_some(id);
    out.summary.withdrawn += cache.withdraw(msg.exporter, msg.dialect.protocol(), msg.domain, which, options);
    Ok(())
}

/// A data set (RFC 7011 section 3.3.2, RFC 3954 section 5.3): records of the template named by
/// the set id, until fewer bytes than the shortest record remain (padding). Records of an
/// options template update the domain's sampling state; the others are flow records.
fn data_set<V: Visitor>(
    msg: &Message,
    mut set: Cursor<'_>,
    start: usize,
    set_id: u16,
    cache: &mut TemplateCache,
    out: &mut Emitter<'_, V>,
) {
    let protocol = msg.dialect.protocol();
    let configured = cache.configured_sampling(msg.exporter);
    let max_samplers = cache.limits().max_samplers_per_domain;
    let state = cache.domain_mut(msg.exporter, protocol, msg.domain);
    let Some((template, sampling)) = state.and_then(|s| s.templates.get(&set_id).map(|t| (t, &mut s.sampling))) else {
        out.summary.sets_without_template += 1;
        out.problem(&FlowError::TemplateMissing { offset: start, template_id: set_id, domain: msg.domain });
        return;
    };
    let empty = FlowRecord::empty(protocol, msg.exporter, msg.domain);
    let min = template.min_record_len();
    while set.remaining() >= min {
        let mut fields = Fields::new(empty);
        if let Err(e) = read_record(&mut set, template, &mut fields) {
            out.problem(&e);
            return;
        }
        if template.is_options() {
            apply_options(&fields, sampling, max_samplers);
            out.summary.options_records += 1;
        } else {
            out.flow(fields.finish(msg.clock, Some(sampling), configured));
        }
    }
}
