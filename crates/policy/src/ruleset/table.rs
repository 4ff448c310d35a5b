//! The compiled ruleset's tables, on transparent huge pages.
//!
//! A compiled ruleset's big tables (the name table, its filter and string arena, the address bounds
//! and their index) are read at random: tens of MiB of them, far beyond what the TLB covers with
//! 4 KiB pages. Nearly every such read then also walks the page tables, and on a virtual machine
//! that walk goes through the guest's tables and the host's. A table lives in memory of its own,
//! aligned to 2 MiB and marked `MADV_HUGEPAGE`, so that the kernel backs it with 2 MiB pages where
//! it can: 40 MiB of table is then 20 TLB entries. [`Table::filled`] makes one to be built in
//! place; [`Table::new`] moves a built `Vec` into one.
//!
//! This is most of the policy crate's `unsafe` code (the rest is one SSE2 call each in
//! `domain_set` and `line_map`, and in `line_map` two 16-byte loads and one `asm!` 4-byte load):
//! one `mmap`, its `munmap`, one `madvise`, the writes into the mapping, and
//! [`release_freed_memory`]'s `malloc_trim`. Where the kernel gives no huge pages (transparent huge
//! pages `never`, or memory too fragmented), the mapping is ordinary 4 KiB pages; where `mmap`
//! fails, and for tables under 2 MiB, the table stays on the heap. Contents and behaviour are the
//! same either way.
#![allow(unsafe_code)]

use std::fmt;
use std::mem::size_of;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The size and alignment of an x86-64 (and arm64 4K-granule) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// An owned slice of plain values, on huge pages when it is large enough to gain from them. Built
/// through `DerefMut`, then only read (a compiled ruleset is shared behind an `Arc`).
pub(crate) struct Table<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped at `ptr`; 0 when the values are a boxed slice on the heap.
    mapped: usize,
}

// SAFETY: a `Table` owns its values exclusively, as a `Box<[T]>` does.
unsafe impl<T: Copy + Send> Send for Table<T> {}
// SAFETY: as a `Box<[T]>`: shared access only reads, writes need `&mut`.
unsafe impl<T: Copy + Sync> Sync for Table<T> {}

impl<T: Copy> Table<T> {
    /// Takes `values` over: copied into a 2 MiB-aligned mapping marked for huge pages when they fill
    /// at least one huge page, otherwise kept on the heap (without spare capacity).
    pub(crate) fn new(values: Vec<T>) -> Self {
        if size_of::<T>() * values.len() >= HUGE_PAGE {
            if let Some((ptr, mapped)) = Self::map(values.len()) {
                // SAFETY: `ptr` is aligned to 2 MiB (more than any `T` needs), writable for
                // `values.len()` values, and does not overlap `values`. `T: Copy`: a plain copy.
                unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), ptr.as_ptr(), values.len()) };
                return Table { ptr, len: values.len(), mapped };
            }
        }
        let len = values.len();
        let raw = Box::into_raw(values.into_boxed_slice());
        // A box's pointer is never null (a dangling, well-aligned one when empty).
        let ptr = NonNull::new(raw.cast::<T>()).unwrap_or(NonNull::dangling());
        Table { ptr, len, mapped: 0 }
    }

    /// `len` copies of `value`, written straight into the table's own memory: a table built in
    /// place (through `DerefMut`) is never copied, and never exists twice during a compile.
    pub(crate) fn filled(len: usize, value: T) -> Self {
        if size_of::<T>().saturating_mul(len) >= HUGE_PAGE {
            if let Some((ptr, mapped)) = Self::map(len) {
                for i in 0..len {
                    // SAFETY: `ptr` is aligned and writable for `len` values; `i < len`.
                    unsafe { ptr.as_ptr().add(i).write(value) };
                }
                return Table { ptr, len, mapped };
            }
        }
        Table::new(vec![value; len])
    }

    /// A fresh mapping for `len` values, 2 MiB-aligned and marked for huge pages, with its length
    /// in bytes; `None` when the kernel refuses one.
    fn map(len: usize) -> Option<(NonNull<T>, usize)> {
        const { assert!(std::mem::align_of::<T>() <= HUGE_PAGE) };
        let bytes = size_of::<T>().checked_mul(len)?;
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|&p| p > 0)?;
        let huge = huge_part(bytes);
        let length = bytes.next_multiple_of(page).max(huge);
        // Map a huge page more than needed, then give back what lies outside the aligned part.
        let reserve = length + HUGE_PAGE;
        // SAFETY: a new private anonymous mapping; no existing memory is named or changed.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let base = base as usize;
        let start = base.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (start - base, base + reserve - (start + length));
        // SAFETY: both ranges are page-aligned parts of the mapping just made, outside
        // `start..start + length`, and nothing refers to them.
        unsafe {
            if head > 0 {
                libc::munmap(base as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((start + length) as *mut libc::c_void, tail);
            }
        }
        // SAFETY: advice on memory of the mapping above; it does not change its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, huge, libc::MADV_HUGEPAGE);
        }
        let Some(ptr) = NonNull::new(start as *mut T) else {
            // SAFETY: the mapping kept above; nothing refers to it. (Unreachable: mmap succeeded.)
            unsafe { libc::munmap(start as *mut libc::c_void, length) };
            return None;
        };
        Some((ptr, length))
    }

    /// Memory the table holds: the whole mapping (the values rounded up to a page, or to a huge
    /// page), or the boxed slice's bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.mapped.max(self.bytes())
    }

    /// Bytes the values take.
    pub(crate) fn bytes(&self) -> usize {
        size_of::<T>() * self.len
    }

    /// Whether the values are in a mapping marked for huge pages (not whether the kernel gave them).
    #[cfg(test)]
    fn is_mapped(&self) -> bool {
        self.mapped != 0
    }
}

/// Returns freed heap pages to the kernel (glibc `malloc_trim(0)`); a no-op elsewhere. A compile
/// frees more scratch than the ruleset it leaves (and a reload frees a whole ruleset); glibc keeps
/// those pages in its arenas, resident, until reused. `bawaba serve` calls this after each load.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena it trims);
    // 0 asks to keep no padding at the top of the heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How much of a table of `bytes` goes on huge pages: the whole huge pages it fills, and the last,
/// partly filled one too when at least a quarter of it would be used (an 8 MiB index a few bytes
/// short of its size, say). A smaller rest stays on 4 KiB pages, so a table never costs more than
/// 1.5 MiB over its size. The advice comes before the first touch, so that the first writes' page
/// faults take huge pages straight away; a refusal only costs speed.
fn huge_part(bytes: usize) -> usize {
    if bytes % HUGE_PAGE >= HUGE_PAGE / 4 {
        bytes.next_multiple_of(HUGE_PAGE)
    } else {
        bytes / HUGE_PAGE * HUGE_PAGE
    }
}

impl<T: Copy> Deref for Table<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialized values that live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for Table<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for Table<T> {
    fn drop(&mut self) {
        if self.mapped == 0 {
            // SAFETY: `ptr` and `len` came from `Box::into_raw` of a boxed slice in `new`.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len)) });
        } else {
            // SAFETY: the mapping made by `map`, `mapped` bytes long; nothing borrows it any more.
            unsafe { libc::munmap(self.ptr.as_ptr().cast::<libc::c_void>(), self.mapped) };
        }
    }
}

impl<T: Copy> Default for Table<T> {
    fn default() -> Self {
        Table::new(Vec::new())
    }
}

impl<T: Copy> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("len", &self.len).field("huge_page_mapping", &(self.mapped != 0)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `/proc/self/smaps` block of the mapping that starts at `addr`.
    fn smaps_of(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
        let head = format!("{addr:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        let first = lines.next().unwrap_or_else(|| panic!("no mapping starts at {addr:x}"));
        let rest = lines.take_while(|l| l.split_whitespace().next().is_some_and(|w| w.ends_with(':')));
        std::iter::once(first).chain(rest).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_large_table_is_a_copy_on_its_own_huge_page_aligned_mapping() {
        // 9.2 MiB: the last huge page is used enough to be one; 4.1 MiB: it is not.
        for (count, huge_pages) in [(300_000u32, 5), (135_000, 2)] {
            let values: Vec<(u128, u32)> = (0..count).map(|i| (u128::from(i) << 64 | 7, i ^ 0x5555)).collect();
            let table = Table::new(values.clone());
            assert!(table.is_mapped());
            assert_eq!(&*table, &values[..]);
            assert_eq!(table.bytes(), values.len() * 32);
            let addr = table.as_ptr() as usize;
            assert_eq!(addr % HUGE_PAGE, 0, "{addr:x}");
            // The huge part is one mapping, marked: the kernel may back it with huge pages (under
            // `never` it would say 0). A rest of 4 KiB pages follows it.
            let huge = huge_pages * HUGE_PAGE;
            let smaps = smaps_of(addr);
            // A kernel without transparent huge pages has no such file, and says 0 too.
            let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
            if !thp.is_empty() && !thp.contains("[never]") {
                assert_eq!(field(&smaps, "THPeligible:"), 1, "{smaps}");
            }
            assert_eq!(field(&smaps, "Size:") * 1024, huge, "{smaps}");
            let rest = table.bytes().saturating_sub(huge).next_multiple_of(4096);
            if rest > 0 {
                let smaps = smaps_of(addr + huge);
                assert_eq!(field(&smaps, "Size:") * 1024, rest, "{smaps}");
            }
            assert_eq!(table.memory_bytes(), huge + rest);
        }
    }

    /// The number after `name` in an smaps block (without its unit).
    fn field(smaps: &str, name: &str) -> usize {
        smaps
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {smaps}"))
    }

    #[test]
    fn a_filled_table_is_built_in_place() {
        let len = HUGE_PAGE / 8 * 3;
        let mut table = Table::filled(len, 7u64);
        assert!(table.is_mapped());
        assert_eq!(table.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(table.iter().all(|&v| v == 7));
        table[5] = 9;
        assert_eq!((table[4], table[5], table.len()), (7, 9, len));
        assert_eq!(table.memory_bytes(), 3 * HUGE_PAGE);
        let small = Table::filled(3, 1u8);
        assert!(!small.is_mapped());
        assert_eq!(&*small, &[1, 1, 1]);
    }

    #[test]
    fn small_and_empty_tables_stay_on_the_heap() {
        let table = Table::new(vec![1u64, 2, 3]);
        assert!(!table.is_mapped());
        assert_eq!(&*table, &[1, 2, 3]);
        let empty: Table<u64> = Table::default();
        assert!(empty.is_empty());
        assert_eq!((empty.bytes(), empty.memory_bytes()), (0, 0));
        assert_eq!(table.memory_bytes(), 24);
    }

    #[test]
    fn tables_can_be_moved_to_and_dropped_on_other_threads() {
        let tables: Vec<Table<u64>> = (0..4).map(|i| Table::new(vec![i; HUGE_PAGE / 8 + 1])).collect();
        std::thread::spawn(move || {
            for (i, t) in tables.iter().enumerate() {
                assert!(t.iter().all(|&v| v == i as u64));
            }
            drop(tables);
        })
        .join()
        .expect("thread");
    }
}
