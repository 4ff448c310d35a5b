//! One socket option the standard library and socket2 do not offer (SO_RCVBUFFORCE).
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
