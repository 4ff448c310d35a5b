//! Data records of NetFlow v9 and IPFIX: reading the fields a template describes into a
//! [`FlowRecord`], turning exporter clocks into Unix time, and working out the sampling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cursor::{be_uint, Cursor};
use crate::ie::Slot;
use crate::template::{SamplingState, Template, VARIABLE_LENGTH};
use crate::{FlowError, FlowRecord, Sampling, SamplingSource};

/// Seconds from the NTP era 0 (1900) to the Unix epoch (RFC 5905 section 6).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The clocks of the message header that record times are relative to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// The message's export time, milliseconds since the Unix epoch.
    pub(crate) export_ms: u64,
    /// NetFlow v9's sysUpTime at export (RFC 3954 section 5.1); `None` for IPFIX, whose
    /// sysUpTime fields count from systemInitTimeMilliseconds (RFC 7011 section 6.1, IANA
    /// IE 21/22/160).
    pub(crate) uptime_ms: Option<u32>,
}

/// The fields of one data record, before they are combined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub(crate) record: FlowRecord,
    has_bytes: bool,
    has_packets: bool,
    bytes_total: u64,
    packets_total: u64,
    start_uptime: Option<u32>,
    end_uptime: Option<u32>,
    start_abs: Option<u64>,
    end_abs: Option<u64>,
    start_delta_us: Option<u64>,
    end_delta_us: Option<u64>,
    pub(crate) system_init_ms: Option<u64>,
    icmp_type_code: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    fragment_offset: Option<u16>,
    fragment_flags: Option<u8>,
    sampling_interval: u32,
    pub(crate) sampler_id: Option<u64>,
    random_interval: u32,
    packet_interval: u32,
    packet_space: Option<u32>,
    sampling_size: u32,
    sampling_population: u32,
}

fn clamp32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A dateTimeMicroseconds / dateTimeNanoseconds value (NTP timestamp format, RFC 7011 section
/// 6.1.9/6.1.10) in milliseconds since the Unix epoch; `None` before 1970.
fn ntp_to_unix_ms(b: &[u8]) -> Option<u64> {
    let v = be_uint(b);
    let secs = (v >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let frac_ms = ((v & 0xffff_ffff) * 1000) >> 32;
    Some(secs * 1000 + frac_ms)
}

impl Fields {
    pub(crate) fn new(record: FlowRecord) -> Fields {
        Fields {
            record,
            has_bytes: false,
            has_packets: false,
            bytes_total: 0,
            packets_total: 0,
            start_uptime: None,
            end_uptime: None,
            start_abs: None,
            end_abs: None,
            start_delta_us: None,
            end_delta_us: None,
            system_init_ms: None,
            icmp_type_code: None,
            icmp_type: None,
            icmp_code: None,
            fragment_offset: None,
            fragment_flags: None,
            sampling_interval: 0,
            sampler_id: None,
            random_interval: 0,
            packet_interval: 0,
            packet_space: None,
            sampling_size: 0,
            sampling_population: 0,
        }
    }

    #[inline(always)]
    fn set(&mut self, slot: Slot, v: &[u8]) {
        let r = &mut self.record;
        match slot {
            Slot::Skip => {}
            Slot::Bytes => {
                r.bytes = be_uint(v);
                self.has_bytes = true;
            }
            Slot::Packets => {
                r.packets = be_uint(v);
                self.has_packets = true;
            }
            Slot::BytesTotal => self.bytes_total = be_uint(v),
            Slot::PacketsTotal => self.packets_total = be_uint(v),
            Slot::Protocol => r.protocol = be_uint(v) as u8,
            Slot::Tos => r.tos = be_uint(v) as u8,
            // tcpControlBits is 16 bits in IPFIX (RFC 7125); the classic flags are the low 8.
            Slot::TcpFlags => r.tcp_flags = be_uint(v) as u8,
            Slot::SrcPort => r.src_port = be_uint(v) as u16,
            Slot::DstPort => r.dst_port = be_uint(v) as u16,
            Slot::SrcV4 | Slot::DstV4 => {
                let Ok(a) = <[u8; 4]>::try_from(v) else { return };
                let a = IpAddr::V4(Ipv4Addr::from(a));
                if slot == Slot::SrcV4 {
                    r.src = a;
                } else {
                    r.dst = a;
                }
            }
            Slot::SrcV6 | Slot::DstV6 => {
                let Ok(a) = <[u8; 16]>::try_from(v) else { return };
                let a = IpAddr::V6(Ipv6Addr::from(a));
                if slot == Slot::SrcV6 {
                    r.src = a;
                } else {
                    r.dst = a;
                }
            }
            Slot::SrcPrefix => r.src_prefix_len = Some(be_uint(v) as u8),
            Slot::DstPrefix => r.dst_prefix_len = Some(be_uint(v) as u8),
            Slot::InputIf => r.input_ifindex = clamp32(be_uint(v)),
            Slot::OutputIf => r.output_ifindex = clamp32(be_uint(v)),
            Slot::SrcAs => r.src_as = Some(clamp32(be_uint(v))),
            Slot::DstAs => r.dst_as = Some(clamp32(be_uint(v))),
            Slot::StartUptime => self.start_uptime = Some(be_uint(v) as u32),
            Slot::EndUptime => self.end_uptime = Some(be_uint(v) as u32),
            Slot::StartSeconds => self.start_abs = Some(be_uint(v).saturating_mul(1000)),
            Slot::EndSeconds => self.end_abs = Some(be_uint(v).saturating_mul(1000)),
            Slot::StartMillis => self.start_abs = Some(be_uint(v)),
            Slot::EndMillis => self.end_abs = Some(be_uint(v)),
            Slot::StartNtp => self.start_abs = ntp_to_unix_ms(v),
            Slot::EndNtp => self.end_abs = ntp_to_unix_ms(v),
            Slot::StartDeltaMicros => self.start_delta_us = Some(be_uint(v)),
            Slot::EndDeltaMicros => self.end_delta_us = Some(be_uint(v)),
            Slot::SystemInit => self.system_init_ms = Some(be_uint(v)),
            Slot::IcmpTypeCode => self.icmp_type_code = Some(be_uint(v) as u16),
            Slot::IcmpType => self.icmp_type = Some(be_uint(v) as u8),
            Slot::IcmpCode => self.icmp_code = Some(be_uint(v) as u8),
            Slot::FragmentOffset => self.fragment_offset = Some(be_uint(v) as u16),
            Slot::FragmentFlags => self.fragment_flags = Some(be_uint(v) as u8),
            Slot::SamplingInterval => self.sampling_interval = clamp32(be_uint(v)),
            Slot::SamplerId => self.sampler_id = Some(be_uint(v)),
            Slot::SamplerRandomInterval => self.random_interval = clamp32(be_uint(v)),
            Slot::PacketInterval => self.packet_interval = clamp32(be_uint(v)),
            Slot::PacketSpace => self.packet_space = Some(clamp32(be_uint(v))),
            Slot::SamplingSize => self.sampling_size = clamp32(be_uint(v)),
            Slot::SamplingPopulation => self.sampling_population = clamp32(be_uint(v)),
        }
    }

    /// The sampling rate these fields state, if any: samplingInterval (IE 34),
    /// samplerRandomInterval (50), samplingPacketInterval/Space (305/306, RFC 5477 section
    /// 8.2.1: `interval` packets selected, then `space` skipped) or samplingSize/Population
    /// (309/310, section 8.2.3).
    pub(crate) fn stated_rate(&self) -> Option<u32> {
        if self.sampling_interval > 0 {
            return Some(self.sampling_interval);
        }
        if self.random_interval > 0 {
            return Some(self.random_interval);
        }
        if let (interval @ 1.., Some(space)) = (self.packet_interval, self.packet_space) {
            let (i, s) = (u64::from(interval), u64::from(space));
            return Some(clamp32(((i + s) + i / 2) / i).max(1));
        }
        if let (size @ 1.., population @ 1..) = (self.sampling_size, self.sampling_population) {
            let (n, total) = (u64::from(size), u64::from(population));
            return Some(clamp32((total + n / 2) / n).max(1));
        }
        None
    }

    /// Completes the record: counters, times, ICMP, fragments and sampling.
    pub(crate) fn finish(
        &mut self,
        clock: Clock,
        domain: Option<&SamplingState>,
        configured: Option<u32>,
    ) -> &FlowRecord {
        let stated_rate = self.stated_rate();
        let r = &mut self.record;
        if !self.has_bytes {
            r.bytes = self.bytes_total;
        }
        if !self.has_packets {
            r.packets = self.packets_total;
        }

        let init = self.system_init_ms.or(domain.and_then(|d| d.system_init_ms));
        let from_uptime = |up: u32| match clock.uptime_ms {
            // RFC 3954 section 8, FIRST_SWITCHED/LAST_SWITCHED: sysUpTime in ms of the
            // packet; the header gives sysUpTime and Unix time at export. The difference is
            // taken modulo 2^32 so an uptime counter that wrapped still works.
            Some(now) => Some(clock.export_ms.saturating_sub(u64::from(now.wrapping_sub(up)))),
            None => init.map(|i| i.saturating_add(u64::from(up))),
        };
        let from_delta = |us: u64| Some(clock.export_ms.saturating_sub(us / 1000));
        r.start_ms = self
            .start_abs
            .or_else(|| self.start_uptime.and_then(from_uptime))
            .or_else(|| self.start_delta_us.and_then(from_delta));
        r.end_ms = self
            .end_abs
            .or_else(|| self.end_uptime.and_then(from_uptime))
            .or_else(|| self.end_delta_us.and_then(from_delta));

        if r.dst_port == 0 {
            if let Some(tc) = self.icmp_type_code {
                r.dst_port = tc;
            } else if self.icmp_type.is_some() || self.icmp_code.is_some() {
                r.dst_port = u16::from(self.icmp_type.unwrap_or(0)) << 8 | u16::from(self.icmp_code.unwrap_or(0));
            }
        }

        // fragmentFlags (IE 197): bit 2 from the left, 0x20, is More Fragments.
        r.fragment = match (self.fragment_offset, self.fragment_flags) {
            (None, None) => None,
            (offset, flags) => Some(offset.unwrap_or(0) != 0 || flags.unwrap_or(0) & 0x20 != 0),
        };

        r.sampling = if let Some(rate) = stated_rate {
            Sampling::known(rate, SamplingSource::Record)
        } else if let Some(rate) =
            domain.and_then(|d| self.sampler_id.and_then(|id| d.samplers.get(&id).copied()).or(d.domain_rate))
        {
            Sampling::known(rate, SamplingSource::OptionsTemplate)
        } else if let Some(rate) = configured {
            Sampling::known(rate, SamplingSource::Config)
        } else {
            Sampling::UNKNOWN
        };
        &self.record
    }
}

/// Reads one data record of `template` from `c` into `fields` (RFC 7011 section 3.4.3, RFC
/// 3954 section 5.3). Variable-length fields carry their length in one byte, or in 255 and
/// two more bytes (RFC 7011 section 7).
#[inline]
pub(crate) fn read_record(c: &mut Cursor<'_>, template: &Template, fields: &mut Fields) -> Result<(), FlowError> {
    if let Some(steps) = template.fixed_steps() {
        // Fixed length: one bounds check for the record, then straight to the fields used.
        let record = c.bytes(template.min_record_len(), "data record")?;
        for step in steps {
            if let Some(value) = record.get(step.offset..step.offset + step.length) {
                fields.set(step.slot, value);
            }
        }
        return Ok(());
    }
    for spec in template.fields() {
        let len = if spec.length == VARIABLE_LENGTH {
            match c.u8("variable-length field length")? {
                255 => usize::from(c.u16("variable-length field length")?),
                n => usize::from(n),
            }
        } else {
            usize::from(spec.length)
        };
        let value = c.bytes(len, "data record field")?;
        fields.set(spec.slot, value);
    }
    Ok(())
}

/// What an options data record said about the domain: a sampling rate (for one sampler /
/// selector id or the whole domain) and the exporter's system init time.
pub(crate) fn apply_options(fields: &Fields, state: &mut SamplingState, max_samplers: usize) {
    if let Some(init) = fields.system_init_ms {
        state.system_init_ms = Some(init);
    }
    let Some(rate) = fields.stated_rate() else { return };
    match fields.sampler_id {
        Some(id) => {
            if state.samplers.len() < max_samplers || state.samplers.contains_key(&id) {
                state.samplers.insert(id, rate);
            }
        }
        None => state.domain_rate = Some(rate),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamps() {
        // 2024-01-01T00:00:00.5Z: Unix 1704067200, NTP seconds 1704067200 + 2208988800.
        let secs = 1_704_067_200u64 + NTP_UNIX_OFFSET;
        let v = (secs << 32) | (1 << 31);
        assert_eq!(ntp_to_unix_ms(&v.to_be_bytes()), Some(1_704_067_200_500));
        assert_eq!(ntp_to_unix_ms(&[0; 8]), None);
    }

    #[test]
    fn stated_rates() {
        let mut f = Fields::new(FlowRecord::empty(crate::FlowProtocol::Ipfix, IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        assert_eq!(f.stated_rate(), None);
        f.packet_interval = 1;
        assert_eq!(f.stated_rate(), None);
        f.packet_space = Some(99);
        assert_eq!(f.stated_rate(), Some(100));
        f.packet_interval = 0;
        f.sampling_size = 2;
        f.sampling_population = 2000;
        assert_eq!(f.stated_rate(), Some(1000));
        f.sampling_interval = 512;
        assert_eq!(f.stated_rate(), Some(512));
    }
}
