//! Socket options the standard library and socket2 do not offer: SO_RCVBUFFORCE, and the drop
//! counter of SO_MEMINFO.
#![allow(unsafe_code)]

/// `setsockopt(fd, level, name, &value)`; failures are ignored (the option is a best effort).
pub fn setsockopt_int(fd: std::os::fd::RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
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
/// (`SK_MEMINFO_DROPS` of `SO_MEMINFO`, Linux 4.6 and later); it wraps at 2^32. `None` when
/// the kernel does not say.
pub fn socket_drops(fd: std::os::fd::RawFd) -> Option<u32> {
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a live buffer of `len` bytes; the kernel writes at most `len` bytes
    // and sets `len` to what it wrote.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
    let drops = usize::try_from(libc::SK_MEMINFO_DROPS).ok()?;
    (rc == 0 && (len as usize) >= (drops + 1) * 4).then(|| info[drops])
}
