//! Batched UDP receive: `recvmmsg(2)` fills up to [`BATCH`] datagrams per system call into
//! buffers allocated once. This is the module of the crate with `unsafe` code: the system call
//! and the raw `mmsghdr`/`iovec` arrays it reads, all pointing into memory this struct owns
//! and never moves.
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
    /// Wraps a bound socket; reads wait at most `timeout` (so the caller can check for shutdown).
    pub fn new(socket: UdpSocket, timeout: Duration) -> io::Result<BatchReceiver> {
        socket.set_read_timeout(Some(timeout))?;
        let mut buffers = vec![0u8; BATCH * MAX_DATAGRAM];
        // SAFETY: all-zero sockaddr_storage is a valid (unspecified) address.
        let mut addrs: Vec<libc::sockaddr_storage> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut iovecs: Vec<libc::iovec> = (0..BATCH)
            .map(|i| libc::iovec {
                // In bounds: i < BATCH, and each buffer is MAX_DATAGRAM long.
                iov_base: buffers[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            })
            .collect();
        let headers: Vec<libc::mmsghdr> = (0..BATCH)
            .map(|i| {
                // SAFETY: all-zero msghdr is valid; the fields set below point into our arrays.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovecs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        Ok(BatchReceiver { socket, buffers, iovecs, addrs, headers, filled: 0 })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for datagrams (up to the timeout) and reads as many as are queued, up to
    /// [`BATCH`]; returns how many (0 on timeout).
    pub fn receive(&mut self) -> io::Result<usize> {
        for (i, h) in self.headers.iter_mut().enumerate() {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_len = 0;
        }
        // First call blocks (up to SO_RCVTIMEO) for one datagram; MSG_WAITFORONE returns as soon
        // as one is there, with whatever else is already queued.
        // SAFETY: `headers` holds BATCH valid mmsghdr entries whose pointers reference live
        // buffers of the lengths given; the kernel writes only within them.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            self.filled = 0;
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        self.filled = n as usize;
        Ok(self.filled)
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
        let mut r = BatchReceiver::new(rx, Duration::from_millis(200)).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..100u8 {
            tx.send_to(&[i; 10], to).unwrap();
        }
        let mut seen = 0usize;
        while seen < 100 {
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
        assert_eq!(r.receive().unwrap(), 0, "times out when idle");
    }
}
