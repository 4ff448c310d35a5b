//! Batched UDP for bawaba's busy sockets: the flow collector and the DNS server.
//!
//! - [`BatchReceiver`]: `recvmmsg(2)` fills up to a batch of datagrams per system call into
//!   buffers allocated once, without waiting.
//! - [`BatchSender`]: `sendmmsg(2)` sends a batch of answers, each to its own address, in one
//!   system call.
//! - [`BatchReceiver::receive_waiting`]: the same on a blocking socket, sleeping in the call
//!   until the first datagram comes.
//! - [`send_to_nowait`]: one datagram, without waiting even on a blocking socket.
//! - [`wait_readable`]: waits for any of several sockets (`poll(2)`).
//! - [`socket_drops`]: the kernel's count of datagrams a socket dropped because its receive
//!   buffer was full; [`set_int_option`] for options the standard library lacks.
//!
//! A datagram costs a system call of its own only when it arrives alone; under load one call
//! moves dozens. All functions take the socket's file descriptor, so callers keep whatever
//! socket type they use (std, socket2, tokio with `try_io`). This is the crate's `unsafe` code:
//! the system calls and the raw `mmsghdr`/`iovec`/`sockaddr` arrays they read, all pointing into
//! memory the batch owns and never moves while a call runs.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::Duration;

/// Datagrams `recvmmsg` fills into one [`BatchReceiver`].
pub struct BatchReceiver {
    buffers: Vec<u8>,
    max_datagram: usize,
    iovecs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    headers: Vec<libc::mmsghdr>,
    filled: usize,
}

// SAFETY: the raw pointers in `iovecs` and `headers` point into `buffers`, `iovecs` and `addrs`,
// heap allocations owned by this value and never reallocated; moving the value to another thread
// moves them along, and `receive` sets them again before every call.
unsafe impl Send for BatchReceiver {}

impl BatchReceiver {
    /// Buffers for `batch` datagrams of up to `max_datagram` bytes (longer ones are cut, and
    /// [`BatchReceiver::datagram`] says so).
    pub fn new(batch: usize, max_datagram: usize) -> BatchReceiver {
        let batch = batch.max(1);
        let max_datagram = max_datagram.max(1);
        let mut buffers = vec![0u8; batch * max_datagram];
        let iovecs = (0..batch)
            .map(|i| libc::iovec {
                // In bounds: i < batch, and each buffer is max_datagram long.
                iov_base: buffers[i * max_datagram..].as_mut_ptr().cast(),
                iov_len: max_datagram,
            })
            .collect();
        // SAFETY: all-zero sockaddr_storage is a valid (unspecified) address, and an all-zero
        // mmsghdr a valid empty header; `receive` points the headers into our arrays.
        let addrs = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
        let headers = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
        BatchReceiver { buffers, max_datagram, iovecs, addrs, headers, filled: 0 }
    }

    /// Reads as many datagrams as `fd` has queued, up to the batch, without waiting; returns
    /// how many (0 when none is queued). Other errors are returned as they are.
    pub fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.receive_with(fd, libc::MSG_DONTWAIT);
        if let Err(e) = &n {
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                return Ok(0);
            }
        }
        n
    }

    /// Waits for a datagram, then reads it and whatever else is queued, up to the batch
    /// (`MSG_WAITFORONE`): one system call for a lone datagram where [`wait_readable`] and a
    /// receive take two. `fd` must be a blocking socket; its `SO_RCVTIMEO` bounds the wait, and
    /// a wait that ends without a datagram is the `WouldBlock` error.
    pub fn receive_waiting(&mut self, fd: RawFd) -> io::Result<usize> {
        self.receive_with(fd, libc::MSG_WAITFORONE)
    }

    fn receive_with(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        let addrs = self.addrs.as_mut_ptr();
        let iovecs = self.iovecs.as_mut_ptr();
        for (i, h) in self.headers.iter_mut().enumerate() {
            // In bounds: every array has `capacity` entries.
            h.msg_hdr.msg_name = addrs.wrapping_add(i).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iovecs.wrapping_add(i);
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        self.filled = 0;
        // SAFETY: `headers` holds `capacity` valid mmsghdr entries whose pointers reference live
        // buffers of the lengths given; the kernel writes only within them.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.filled = n as usize;
        Ok(self.filled)
    }

    /// Datagram `i` of the last batch: its bytes, its sender, and whether it was cut.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>, bool)> {
        if i >= self.filled {
            return None;
        }
        let h = self.headers.get(i)?;
        let len = (h.msg_len as usize).min(self.max_datagram);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let bytes = self.buffers.get(i * self.max_datagram..i * self.max_datagram + len)?;
        Some((bytes, self.addrs.get(i).and_then(from_storage), truncated))
    }
}

/// Answers collected for one `sendmmsg` call: each its bytes (copied in) and its address.
#[derive(Default)]
pub struct BatchSender {
    data: Vec<u8>,
    /// (start, length) of each message in `data`.
    spans: Vec<(usize, usize)>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<libc::socklen_t>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovecs` and `headers` are set by `send` from the arrays this
// value owns, just before the call; in between they are never read.
unsafe impl Send for BatchSender {}

impl BatchSender {
    /// An empty batch.
    pub fn new() -> BatchSender {
        BatchSender::default()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// No message waiting.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Adds a message for `to`.
    pub fn push(&mut self, message: &[u8], to: SocketAddr) {
        self.spans.push((self.data.len(), message.len()));
        self.data.extend_from_slice(message);
        let (storage, len) = to_storage(to);
        self.addrs.push(storage);
        self.lens.push(len);
    }

    /// Forgets every message.
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.addrs.clear();
        self.lens.clear();
    }

    /// Sends the messages from the `skip`-th on, as many as the socket takes in one call,
    /// without waiting; returns how many went (a `WouldBlock` error when none could). A message
    /// the kernel refuses for itself (an unreachable address, say) ends the call early: the
    /// caller skips it and sends the rest.
    pub fn send(&mut self, fd: RawFd, skip: usize) -> io::Result<usize> {
        let count = self.spans.len().saturating_sub(skip);
        if count == 0 {
            return Ok(0);
        }
        self.iovecs.clear();
        for &(start, len) in &self.spans[skip..] {
            // In bounds: every span lies within `data`.
            self.iovecs.push(libc::iovec { iov_base: self.data[start..].as_mut_ptr().cast(), iov_len: len });
        }
        let (addrs, iovecs) = (self.addrs[skip..].as_mut_ptr(), self.iovecs.as_mut_ptr());
        self.headers.clear();
        for (i, &len) in self.lens[skip..].iter().enumerate() {
            // SAFETY: all-zero mmsghdr is valid; the fields set point into our arrays, each with
            // `count` entries.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = addrs.wrapping_add(i).cast();
            h.msg_hdr.msg_namelen = len;
            h.msg_hdr.msg_iov = iovecs.wrapping_add(i);
            h.msg_hdr.msg_iovlen = 1;
            self.headers.push(h);
        }
        // SAFETY: `headers` holds `count` valid mmsghdr entries pointing into live arrays.
        let n = unsafe { libc::sendmmsg(fd, self.headers.as_mut_ptr(), count as libc::c_uint, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// Sends one datagram to `to` without waiting, on a blocking socket too (`MSG_DONTWAIT`): a
/// full send buffer is the `WouldBlock` error.
pub fn send_to_nowait(fd: RawFd, message: &[u8], to: SocketAddr) -> io::Result<usize> {
    let (storage, len) = to_storage(to);
    // SAFETY: `message` is live for `message.len()` bytes and `storage` holds `len` bytes of a
    // valid socket address.
    let n = unsafe {
        libc::sendto(
            fd,
            message.as_ptr().cast(),
            message.len(),
            libc::MSG_DONTWAIT,
            std::ptr::from_ref(&storage).cast(),
            len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Waits until one of `fds` has a datagram queued, or `timeout` passes.
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> io::Result<()> {
    wait(fds, libc::POLLIN, timeout)
}

/// Waits until `fd` has room in its send buffer, or `timeout` passes.
pub fn wait_writable(fd: RawFd, timeout: Duration) -> io::Result<()> {
    wait(&[fd], libc::POLLOUT, timeout)
}

fn wait(fds: &[RawFd], events: libc::c_short, timeout: Duration) -> io::Result<()> {
    // A loop that sleeps between queries calls this per query: a few sockets need no allocation.
    let mut few = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 4];
    let mut many = Vec::new();
    let polls: &mut [libc::pollfd] = if fds.len() <= few.len() {
        &mut few[..fds.len()]
    } else {
        many.resize(fds.len(), libc::pollfd { fd: -1, events: 0, revents: 0 });
        &mut many
    };
    for (poll, &fd) in polls.iter_mut().zip(fds) {
        *poll = libc::pollfd { fd, events, revents: 0 };
    }
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `polls` is a live array of `polls.len()` pollfd entries.
    let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// `getsockopt(fd, level, name)` for an int option (`SO_DOMAIN`, `SO_PROTOCOL`, ...).
pub fn int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and `len` is the size of `value`.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut libc::c_int).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// `setsockopt(fd, level, name, &value)` for an int option; failures are ignored (callers use it
/// for best-effort options such as SO_RCVBUFFORCE).
pub fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: `value` is a live c_int of the size passed.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// `SO_MEMINFO` (asm-generic/socket.h; the libc crate has the array's indices, not the option).
const SO_MEMINFO: libc::c_int = 55;

/// The kernel's count of datagrams the socket dropped because its receive buffer was full
/// (`SK_MEMINFO_DROPS` of `SO_MEMINFO`, Linux 4.6 and later); it wraps at 2^32. `None` when the
/// kernel does not say. One system call: ask now and then, not per datagram.
pub fn socket_drops(fd: RawFd) -> Option<u32> {
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a live buffer of `len` bytes; the kernel writes at most `len` bytes and
    // sets `len` to what it wrote.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
    let drops = usize::try_from(libc::SK_MEMINFO_DROPS).ok()?;
    (rc == 0 && (len as usize) >= (drops + 1) * 4).then(|| info[drops])
}

fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough
            // and suitably aligned for.
            let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero sockaddr_storage is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for a sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*a.ip()).to_be() };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
