//! Handing freed heap back to the kernel after a policy load. Decoding a bundle allocates more
//! than the compiled ruleset keeps (the decoded snapshot is dropped once compiled); glibc keeps
//! those freed pages in its arenas, where they count in the process's resident memory until
//! reused. `malloc_trim` returns them.
//!
//! A reload frees a whole ruleset and the compile's scratch, blocks of many MiB. glibc serves a
//! block that large from a mapping of its own and unmaps it when freed, but each such free also
//! raises its threshold for the next ones (up to 32 MiB), so that the next compile's blocks come
//! from an arena, whose freed pages stay resident. [`keep_large_blocks_mapped`] fixes the
//! threshold instead. Measured with `bawaba serve` on the 1M-rule DNS bench data: 92 MiB after
//! the cache filled, then 114, 92, 114, 92 MiB after four reloads with the moving threshold, and
//! 92 MiB after each with it fixed (docs/BENCHMARKS.md).

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

/// Blocks of at least this many bytes get a mapping of their own, returned to the kernel when
/// freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Makes every block of [`MMAP_THRESHOLD`] bytes or more a mapping of its own for the rest of the
/// process (glibc `mallopt(M_MMAP_THRESHOLD)`, which also stops glibc moving the threshold); a
/// no-op elsewhere. Call it before the process starts threads.
pub fn keep_large_blocks_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt takes no pointers; it runs before the server starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
