//! The passive back end: AF_PACKET with a TPACKET_V3 receive ring on a mirror port or a bridge,
//! optionally in a fanout group (PACKET_FANOUT_HASH: both directions of a flow go to the same
//! socket, so several processes can share the load). Packets cannot be dropped here: blocked TCP
//! flows are cut with resets injected as Ethernet frames on the same interface, in both
//! directions, and every verdict is counted.
//!
//! The ring is memory the kernel fills; this is the one module of the engine with `unsafe`
//! code: the mmap, and reads of the block and packet headers the kernel writes (the layouts of
//! `struct tpacket_block_desc` and `struct tpacket3_hdr` in `linux/if_packet.h`). Every offset
//! read from the ring is checked against the block's bounds before a slice is made. A block is
//! read only while its status says it belongs to user space, and handed back after.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bawaba_policy::Ruleset;
use bawaba_wire::packet::dissect_ethernet;

use crate::config::EngineSection;
use crate::engine::{Engine, Ignore, PacketVerdict};
use crate::inject;
use crate::nfqueue::{InlineCounters, Shared};

const ETH_P_ALL: u16 = 0x0003;
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const TPACKET_V3: libc::c_int = 2;
const PACKET_FANOUT_HASH: u32 = 0;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// `struct tpacket_req3`.
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    kind: libc::c_ushort,
    alen: libc::c_ushort,
    address: [u8; 8],
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: &OwnedFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
}

/// A TPACKET_V3 receive ring bound to one interface.
pub struct Ring {
    fd: OwnedFd,
    base: *mut u8,
    block_size: usize,
    blocks: usize,
    next: usize,
}

// SAFETY: the ring's memory is owned by this value alone (mapped in `open`, unmapped in `drop`);
// moving it to another thread moves that ownership.
unsafe impl Send for Ring {}

impl Ring {
    /// Opens a ring of `blocks` blocks of `block_size` bytes on `interface`, in promiscuous mode
    /// (so a bridge passes up the frames it forwards), joined to fanout group `fanout` if given.
    /// A block is handed over when full or after `retire` (at least 1 ms).
    pub fn open(
        interface: &str,
        fanout: Option<u16>,
        block_size: usize,
        blocks: usize,
        retire: Duration,
    ) -> io::Result<Ring> {
        let ifindex = ifindex(interface)?;
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(ETH_P_ALL.to_be())) };
        check(raw)?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, PACKET_VERSION, &TPACKET_V3)?;
        let frame_size = 2048u32;
        let req = TpacketReq3 {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size,
            frame_nr: (block_size as u32 / frame_size) * blocks as u32,
            retire_blk_tov: retire.as_millis().max(1) as u32,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(&fd, PACKET_RX_RING, &req)?;
        let len = block_size * blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket; checked for failure.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = Ring { fd, base: base.cast(), block_size, blocks, next: 0 };
        // SAFETY: an all-zero sockaddr_ll is valid; the fields set below make it a bind address.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a sockaddr_ll of the size passed.
        check(unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        let mreq = PacketMreq { ifindex, kind: PACKET_MR_PROMISC, alen: 0, address: [0; 8] };
        setsockopt(&ring.fd, PACKET_ADD_MEMBERSHIP, &mreq)?;
        if let Some(group) = fanout {
            let arg: u32 = u32::from(group) | (PACKET_FANOUT_HASH << 16);
            setsockopt(&ring.fd, PACKET_FANOUT, &arg)?;
        }
        Ok(ring)
    }

    fn block_ptr(&self, index: usize) -> *mut u8 {
        // SAFETY (of the arithmetic): index < blocks, so the offset stays inside the mapping.
        unsafe { self.base.add(index * self.block_size) }
    }

    fn block_status(&self, index: usize) -> u32 {
        // SAFETY: offset 8 of a block is `hdr.bh1.block_status`, a u32 inside the mapping, written
        // by the kernel; read volatile, then fence so the packet data is read after it.
        let status = unsafe { std::ptr::read_volatile(self.block_ptr(index).add(8).cast::<u32>()) };
        fence(Ordering::Acquire);
        status
    }

    /// Waits up to `timeout` for the next block and hands every packet in it to `each` (the frame
    /// and its capture time in nanoseconds), then gives the block back to the kernel. Returns
    /// the number of packets seen.
    pub fn next_block(&mut self, timeout: Duration, mut each: impl FnMut(&[u8], u64)) -> io::Result<usize> {
        let index = self.next;
        if self.block_status(index) & TP_STATUS_USER == 0 {
            // An interrupted wait counts as a quiet one; the block's status decides.
            bawaba_udp::wait_readable(&[self.fd.as_raw_fd()], timeout)?;
            if self.block_status(index) & TP_STATUS_USER == 0 {
                return Ok(0);
            }
        }
        let block = self.block_ptr(index);
        // SAFETY: the block is ours until its status is set back to TP_STATUS_KERNEL below; the
        // kernel does not write to it meanwhile. The slice covers exactly this block.
        let bytes = unsafe { std::slice::from_raw_parts(block as *const u8, self.block_size) };
        let u32_at =
            |at: usize| -> Option<u32> { bytes.get(at..at + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])) };
        let num = u32_at(12).unwrap_or(0) as usize;
        let mut at = u32_at(16).unwrap_or(0) as usize;
        let mut seen = 0;
        for _ in 0..num {
            // struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac (u16) at 24.
            let (Some(next), Some(sec), Some(nsec), Some(snaplen)) =
                (u32_at(at), u32_at(at + 4), u32_at(at + 8), u32_at(at + 12))
            else {
                break;
            };
            let Some(mac) = bytes.get(at + 24..at + 26).map(|b| u16::from_ne_bytes([b[0], b[1]])) else { break };
            let start = at + usize::from(mac);
            let Some(frame) = bytes.get(start..start + snaplen as usize) else { break };
            each(frame, u64::from(sec) * 1_000_000_000 + u64::from(nsec));
            seen += 1;
            if next == 0 {
                break;
            }
            at += next as usize;
        }
        // Hand the block back.
        fence(Ordering::Release);
        // SAFETY: the status word of a block we own; after this write the kernel owns it again.
        unsafe { std::ptr::write_volatile(block.add(8).cast::<u32>(), TP_STATUS_KERNEL) };
        self.next = (index + 1) % self.blocks;
        Ok(seen)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; nothing borrows it any more.
        unsafe {
            libc::munmap(self.base.cast(), self.block_size * self.blocks);
        }
    }
}

/// An AF_PACKET socket that sends whole Ethernet frames out of one interface.
pub struct FrameSender {
    fd: OwnedFd,
    ifindex: libc::c_int,
}

impl FrameSender {
    /// Opens a sending socket on `interface`.
    pub fn open(interface: &str) -> io::Result<FrameSender> {
        let ifindex = ifindex(interface)?;
        // SAFETY: plain socket(2) with protocol 0 (sends only); the descriptor is owned right away.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        check(raw)?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        Ok(FrameSender { fd: unsafe { OwnedFd::from_raw_fd(raw) }, ifindex })
    }

    /// Sends one Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_ll is valid; the interface index makes it a destination.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(frame.get(..6).ok_or_else(|| io::Error::other("short frame"))?);
        // SAFETY: `frame` and `addr` are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

fn ifindex(interface: &str) -> io::Result<libc::c_int> {
    let name = CString::new(interface).map_err(|_| io::Error::other("interface name contains NUL"))?;
    // SAFETY: a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) } as libc::c_int;
    if index == 0 {
        return Err(io::Error::other(format!("no interface {interface}")));
    }
    Ok(index)
}

/// Runs the passive loop on `section.interface` until `stop` is set.
pub fn run(
    section: &EngineSection,
    ruleset: Arc<ArcSwap<Ruleset>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let interface = section.interface.as_deref().ok_or_else(|| io::Error::other("[engine] interface is not set"))?;
    let mut ring = Ring::open(interface, section.fanout_group, 1 << 20, 32, Duration::from_millis(1))?;
    let sender = FrameSender::open(interface)?;
    tracing::info!(interface, fanout = ?section.fanout_group, "passive engine ready (AF_PACKET TPACKET_V3)");
    ready();
    let mut current = ruleset.load_full();
    let mut engine = Engine::new(Arc::clone(&current), section.engine_config());
    let mut counters = InlineCounters::default();
    let mut frames: Vec<u8> = Vec::with_capacity(4096);
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        ring.next_block(Duration::from_millis(100), |frame, ts| {
            let Ok(packet) = dissect_ethernet(frame) else {
                counters.unreadable += 1;
                return;
            };
            let verdict = engine.process(&packet, ts, &mut Ignore);
            if matches!(verdict, PacketVerdict::Accept) {
                return;
            }
            // Passive: nothing can be dropped; a blocked TCP flow is reset on every packet seen.
            let (Some(src_mac), Some(dst_mac)) = (frame.get(6..12), frame.get(..6)) else { return };
            let (mut src, mut dst) = ([0u8; 6], [0u8; 6]);
            src.copy_from_slice(src_mac);
            dst.copy_from_slice(dst_mac);
            let start = frames.len();
            if let Some((a, _)) = inject::passive_resets(&packet, src, dst, &mut frames) {
                for frame in [&frames[start..start + a], &frames[start + a..]] {
                    match sender.send(frame) {
                        Ok(()) => counters.injected += 1,
                        Err(_) => counters.inject_failed += 1,
                    }
                }
            }
            frames.truncate(start);
        })?;
        if last_tick.elapsed() >= Duration::from_millis(500) {
            last_tick = Instant::now();
            let latest = ruleset.load_full();
            if !Arc::ptr_eq(&latest, &current) {
                engine.set_ruleset(Arc::clone(&latest));
                current = latest;
                counters.reloads += 1;
            }
            engine.expire(crate::nfqueue::now_ns(), &mut Ignore);
            shared.publish(&engine, &counters);
        }
    }
    shared.publish(&engine, &counters);
    Ok(())
}
