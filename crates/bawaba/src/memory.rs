//! Handing freed heap back to the kernel after a policy load. Decoding a bundle allocates more
//! than the compiled ruleset keeps (the decoded snapshot is dropped once compiled); glibc keeps
//! those freed pages in its arenas, where they count in the process's resident memory until
//! reused. `malloc_trim` returns them.

/// Returns freed heap pages to the kernel (glibc `malloc_trim(0)`); a no-op elsewhere.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena it trims);
    // 0 asks to keep no padding at the top of the heap.
    unsafe {
        libc::malloc_trim(0);
    }
}
