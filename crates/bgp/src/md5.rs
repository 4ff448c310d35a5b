//! TCP MD5 signatures (RFC 2385) on the speaker's connections: the Linux `TCP_MD5SIG` socket
//! option, set on the socket for the peer's address before it connects, so that the kernel
//! signs every segment from the SYN on and drops the peer's segments whose signature does not
//! verify. This is the module of the crate with `unsafe` code: the `setsockopt(2)` call and the
//! `struct tcp_md5sig` it reads.
//!
//! A wrong or missing password is invisible to BGP: the peer's kernel drops our SYN silently, so
//! the connection attempt just times out.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// Longest password the kernel accepts, bytes (`TCP_MD5SIG_MAXKEYLEN` in linux/tcp.h).
pub const MAX_PASSWORD_LEN: usize = 80;

/// Why TCP MD5 could not be turned on for a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Md5Error {
    /// The password is empty or longer than [`MAX_PASSWORD_LEN`] bytes.
    #[error("TCP MD5 password must be 1 to {MAX_PASSWORD_LEN} bytes, not {0}")]
    PasswordLength(usize),
    /// The kernel has no TCP MD5 support (built without `CONFIG_TCP_MD5SIG`).
    #[error("TCP MD5 for {peer}: the kernel has no TCP MD5 signature support (CONFIG_TCP_MD5SIG): {source}")]
    NotInKernel {
        /// The peer's address.
        peer: IpAddr,
        /// What `setsockopt` said.
        source: io::Error,
    },
    /// `setsockopt(TCP_MD5SIG)` failed for another reason.
    #[error("TCP MD5 for {peer}: setsockopt TCP_MD5SIG: {source}")]
    SetSockOpt {
        /// The peer's address.
        peer: IpAddr,
        /// What `setsockopt` said.
        source: io::Error,
    },
}

/// Checks a password's length: 1 to [`MAX_PASSWORD_LEN`] bytes.
pub fn check_password(password: &str) -> Result<(), Md5Error> {
    match password.len() {
        1..=MAX_PASSWORD_LEN => Ok(()),
        n => Err(Md5Error::PasswordLength(n)),
    }
}

/// `struct tcp_md5sig` from linux/tcp.h: the peer's address in a `__kernel_sockaddr_storage`
/// (128 bytes), flags, prefix length (both unused with `TCP_MD5SIG`: the key is for exactly
/// this address), key length, interface index (unused), key.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    if_index: libc::c_int,
    key: [u8; MAX_PASSWORD_LEN],
}

// The kernel refuses an option shorter than its struct; ours must be exactly its size.
const _: () = assert!(std::mem::size_of::<TcpMd5Sig>() == 216);

/// Sets `password` as the TCP MD5 key for segments to and from `peer` on `socket`, which must
/// be a TCP socket of `peer`'s family that has not connected yet.
pub fn set_password(socket: &impl AsRawFd, peer: IpAddr, password: &str) -> Result<(), Md5Error> {
    check_password(password)?;
    // SAFETY: every field is an integer or an array of integers (sockaddr_storage included), for
    // which all-zero bytes are a valid value.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let storage: *mut libc::sockaddr_storage = &mut sig.addr;
    match peer {
        IpAddr::V4(ip) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is, by definition, large enough and suitably aligned for
            // every socket address type; `storage` points into `sig`, which lives on.
            unsafe { storage.cast::<libc::sockaddr_in>().write(sin) };
        }
        IpAddr::V6(ip) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: ip.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { storage.cast::<libc::sockaddr_in6>().write(sin6) };
        }
    }
    let key = password.as_bytes();
    sig.key[..key.len()].copy_from_slice(key); // check_password: key.len() <= MAX_PASSWORD_LEN
    sig.key_len = key.len() as u16;
    // SAFETY: `sig` is a fully initialised struct tcp_md5sig that outlives the call, and the
    // length passed is its size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&sig as *const TcpMd5Sig).cast(),
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let source = io::Error::last_os_error();
    Err(match source.raw_os_error() {
        Some(libc::ENOPROTOOPT) => Md5Error::NotInKernel { peer, source },
        _ => Md5Error::SetSockOpt { peer, source },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn password_length_is_checked() {
        assert!(check_password("x").is_ok());
        assert!(check_password(&"x".repeat(80)).is_ok());
        assert!(matches!(check_password(""), Err(Md5Error::PasswordLength(0))));
        assert!(matches!(check_password(&"x".repeat(81)), Err(Md5Error::PasswordLength(81))));
    }

    #[test]
    fn key_is_set_on_a_fresh_socket_of_either_family() {
        // This kernel has CONFIG_TCP_MD5SIG (MACHINE-FACTS); elsewhere the error must say why.
        for peer in ["127.0.0.1", "::1"] {
            let peer: IpAddr = peer.parse().unwrap();
            let socket = match peer {
                IpAddr::V4(_) => std::net::TcpListener::bind("127.0.0.1:0"),
                IpAddr::V6(_) => std::net::TcpListener::bind("[::1]:0"),
            };
            let Ok(socket) = socket else { continue }; // no IPv6 loopback
            match set_password(&socket, peer, "s3cret") {
                Ok(()) => {}
                Err(e @ Md5Error::NotInKernel { .. }) => eprintln!("{e}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_mismatched_family_is_an_error_not_a_panic() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // An IPv6 key on an IPv4 socket: the kernel says EINVAL.
        let e = set_password(&socket, "2001:db8::1".parse().unwrap(), "s3cret").unwrap_err();
        assert!(e.to_string().contains("2001:db8::1"), "{e}");
    }
}
