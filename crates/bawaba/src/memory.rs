//! Keeping freed heap out of the process's resident memory across policy loads. After each load
//! `serve` returns the freed pages with [`bawaba_policy::ruleset::release_freed_memory`]
//! (`malloc_trim`): decoding a bundle allocates more than the compiled ruleset keeps, and glibc
//! keeps freed pages in its arenas, resident, until reused.
//!
//! A reload frees a whole ruleset and the compile's scratch, blocks of many MiB. glibc serves a
//! block that large from a mapping of its own and unmaps it when freed, but each such free also
//! raises its threshold for the next ones (up to 32 MiB), so that the next compile's blocks come
//! from an arena, whose freed pages stay resident. [`keep_large_blocks_mapped`] fixes the
//! threshold instead. Measured with `bawaba serve` on the 1M-rule DNS bench data: 92 MiB after
//! the cache filled, then 114, 92, 114, 92 MiB after four reloads with the moving threshold, and
//! 92 MiB after each with it fixed (docs/BENCHMARKS.md).

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
