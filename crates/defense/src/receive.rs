//! Batched UDP receive: `recvmmsg(2)` fills up to [`BATCH`] datagrams per system call into
//! buffers allocated once, without waiting; [`wait_readable`] waits for any of several sockets.
//! [`BatchReceiver::drops`] asks the kernel how many datagrams the socket dropped because its
//! receive buffer was full. This module and `sys` are the crate's `unsafe` code: the system
//! calls and the raw `mmsghdr`/`iovec` arrays they read, all pointing into memory this struct
//! owns and never moves.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Datagrams read per system call at most.
pub const BATCH: usize = 64;
/// Largest datagram kept whole (larger ones are cut and counted by the caller via `truncated`).
pub const MAX_DATAGRAM: usize = 65_536;

/// A socket and the batch of buffers `recvmmsg` fills.
pub struct BatchReceiver {
    socket: UdpSocket,
    buffers: Vec<u8>,
    iovecs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_storage>,
    headers: Vec<libc::mmsghdr>,
    filled: usize,
}

// SAFETY: the raw pointers in `iovecs` and `headers` point into `buffers`, `iovecs` and `addrs`,
// heap allocations owned by this value and never reallocated; moving the value to another thread
// moves them along.
unsafe impl Send for BatchReceiver {}

impl BatchReceiver {
    /// Wraps a bound socket.
    pub fn new(socket: UdpSocket) -> io::Result<BatchReceiver> {
        let mut buffers = vec![0u8; BATCH * MAX_DATAGRAM];
        // SAFETY: all-zero sockaddr_storage is a valid (unspecified) address.
        let addrs: Vec<libc::sockaddr_storage> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        let iovecs: Vec<libc::iovec> = (0..BATCH)
            .map(|i| libc::iovec {
                // In bounds: i < BATCH, and each buffer is MAX_DATAGRAM long.
                iov_base: buffers[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            })
            .collect();
        // SAFETY: all-zero mmsghdr is valid; `receive` points its fields into our arrays.
        let headers: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        Ok(BatchReceiver { socket, buffers, iovecs, addrs, headers, filled: 0 })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Reads as many datagrams as are queued, up to [`BATCH`], without waiting; returns how
    /// many (0 when none is queued).
    pub fn receive(&mut self) -> io::Result<usize> {
        let addrs = self.addrs.as_mut_ptr();
        let iovecs = self.iovecs.as_mut_ptr();
        for (i, h) in self.headers.iter_mut().enumerate() {
            // In bounds: every array has BATCH entries.
            h.msg_hdr.msg_name = addrs.wrapping_add(i).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iovecs.wrapping_add(i);
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `headers` holds BATCH valid mmsghdr entries whose pointers reference live
        // buffers of the lengths given; the kernel writes only within them.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.filled = 0;
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.filled = n as usize;
        Ok(self.filled)
    }

    /// The kernel's count of datagrams this socket dropped (receive buffer full) since it was
    /// opened; it wraps at 2^32. One system call: ask it now and then, not per batch.
    pub fn drops(&self) -> Option<u32> {
        crate::sys::socket_drops(self.socket.as_raw_fd())
    }

    /// Datagram `i` of the last batch: its bytes, its sender, and whether it was cut.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>, bool)> {
        if i >= self.filled {
            return None;
        }
        let h = &self.headers[i];
        let len = (h.msg_len as usize).min(MAX_DATAGRAM);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let bytes = &self.buffers[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len];
        Some((bytes, sockaddr(&self.addrs[i]), truncated))
    }
}

/// Waits until one of `receivers` has a datagram queued, or `timeout` passes.
pub fn wait_readable(receivers: &[BatchReceiver], timeout: Duration) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> =
        receivers.iter().map(|r| libc::pollfd { fd: r.socket.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live array of `fds.len()` pollfd entries.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

fn sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough and suitably aligned for.
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn receives_a_batch_with_senders() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut r = BatchReceiver::new(rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..100u8 {
            tx.send_to(&[i; 10], to).unwrap();
        }
        let mut seen = 0usize;
        while seen < 100 {
            wait_readable(std::slice::from_ref(&r), Duration::from_millis(200)).unwrap();
            let n = r.receive().unwrap();
            assert!(n > 0 && n <= BATCH);
            for i in 0..n {
                let (bytes, from, cut) = r.datagram(i).unwrap();
                assert_eq!(bytes, &[seen as u8; 10]);
                assert_eq!(from, Some(tx.local_addr().unwrap()));
                assert!(!cut);
                seen += 1;
            }
        }
        assert_eq!(r.receive().unwrap(), 0, "returns at once when idle");
        assert_eq!(r.drops(), Some(0));
    }

    #[test]
    fn counts_what_the_kernel_dropped() {
        let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        rx.set_recv_buffer_size(4096).unwrap();
        rx.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        let rx: UdpSocket = rx.into();
        let to = rx.local_addr().unwrap();
        let mut r = BatchReceiver::new(rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let send = |n: usize| {
            for _ in 0..n {
                tx.send_to(&[7; 1000], to).unwrap();
            }
        };
        let read = |r: &mut BatchReceiver| {
            let mut seen = 0;
            while wait_readable(std::slice::from_ref(r), Duration::from_millis(100)).is_ok() {
                match r.receive().unwrap() {
                    0 => break,
                    n => seen += n,
                }
            }
            seen
        };
        send(200);
        let seen = read(&mut r);
        assert!(seen > 0 && seen < 200, "a 4 KiB buffer holds a few of 200 datagrams: {seen}");
        assert_eq!(seen + r.drops().unwrap() as usize, 200, "every datagram read or counted");
    }
}
