//! The process's allocator: the system allocator, except for large buffers (a photo's pixels, its
//! L plane, the joined output, the encoded file), which get their own mapping aligned to 2 MiB
//! and marked for transparent huge pages (`MADV_HUGEPAGE`). A 12 MP photo's buffers are about
//! 100 MiB of fresh memory a request; in 4 KiB pages that was 21,000 page faults, a fifth of the
//! request's CPU time in the kernel; with huge pages about 500 (bench/REPORT.md). Where the
//! kernel has transparent huge pages off, the advice does nothing and the buffers are plain
//! mappings (as the system allocator's own large allocations are); they are unmapped when freed,
//! so memory goes back to the system as before. `--no-huge-pages` leaves the advice out (a host
//! whose memory is fragmented may make a huge-page fault wait for compaction).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Allocations from this size up get their own huge-page mapping.
pub const HUGE_FROM: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// The allocator (`#[global_allocator]` in the binary).
pub struct HugePageAlloc;

/// Whether large mappings are marked for huge pages (`--no-huge-pages` turns it off). Large
/// buffers get their own mapping either way, so that a buffer is freed as it was allocated
/// whatever this says.
static ADVISE: AtomicBool = AtomicBool::new(true);

/// Turns the huge-page advice for large buffers on or off (from `--no-huge-pages`).
pub fn set_enabled(on: bool) {
    ADVISE.store(on, Ordering::Relaxed);
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
}

/// A fresh, zeroed mapping of `len` bytes (a multiple of 2 MiB) at a 2 MiB boundary, or null.
unsafe fn map_huge(len: usize) -> *mut u8 {
    // Map one huge page more than needed, then unmap the unaligned head and the tail.
    let Some(total) = len.checked_add(HUGE_PAGE) else { return std::ptr::null_mut() };
    let p = libc::mmap(std::ptr::null_mut(), total, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
    if p == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let start = p as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let head = aligned - start;
    if head > 0 {
        libc::munmap(p, head);
    }
    let tail = total - head - len;
    if tail > 0 {
        libc::munmap((aligned + len) as *mut libc::c_void, tail);
    }
    // Advice only: without transparent huge pages this fails and the pages are 4 KiB.
    if ADVISE.load(Ordering::Relaxed) {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    aligned as *mut u8
}

unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE_FROM && layout.align() <= HUGE_PAGE {
            map_huge(mapped_len(layout.size()))
        } else {
            System.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE_FROM && layout.align() <= HUGE_PAGE {
            // Fresh anonymous memory is zero.
            map_huge(mapped_len(layout.size()))
        } else {
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE_FROM && layout.align() <= HUGE_PAGE {
            libc::munmap(ptr as *mut libc::c_void, mapped_len(layout.size()));
        } else {
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let huge = |size: usize| size >= HUGE_FROM && layout.align() <= HUGE_PAGE;
        match (huge(layout.size()), huge(new_size)) {
            (false, false) => System.realloc(ptr, layout, new_size),
            // Still inside the same mapping.
            (true, true) if mapped_len(new_size) == mapped_len(layout.size()) => ptr,
            _ => {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AnonHugePages of the mapping that holds `p`, in kB (from /proc/self/smaps).
    fn huge_kb_at(p: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                        inside = (a..b).contains(&p);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("AnonHugePages:") {
                    return v.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    /// With the advice, a touched large buffer lies in huge pages where the kernel offers them
    /// (`transparent_hugepage/enabled` is always or madvise); without it (`--no-huge-pages`),
    /// in none, unless the kernel puts every mapping in them (always).
    #[test]
    fn the_advice_gives_huge_pages_and_the_switch_takes_them_away() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        let a = HugePageAlloc;
        let layout = Layout::from_size_align(16 << 20, 8).unwrap();
        let touched = |on: bool| unsafe {
            set_enabled(on);
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, 1, layout.size());
            let kb = huge_kb_at(p as usize);
            a.dealloc(p, layout);
            kb
        };
        let (with, without) = (touched(true), touched(false));
        set_enabled(true);
        if mode.contains("[madvise]") {
            assert!(with.unwrap() >= 8 << 10, "{with:?} kB in huge pages with the advice");
            assert_eq!(without, Some(0), "huge pages without the advice");
        } else if mode.contains("[always]") {
            assert!(with.unwrap() >= 8 << 10, "{with:?} kB in huge pages with the advice");
        } else {
            eprintln!("transparent huge pages are off here ({}): nothing to check", mode.trim());
        }
    }

    #[test]
    fn large_buffers_are_aligned_zeroed_and_resizable() {
        let a = HugePageAlloc;
        unsafe {
            let layout = Layout::from_size_align(HUGE_FROM + 123, 8).unwrap();
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % HUGE_PAGE, 0);
            let s = std::slice::from_raw_parts_mut(p, layout.size());
            assert!(s.iter().all(|&b| b == 0));
            s.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
            // Grow within the mapping, then beyond it, then shrink below the threshold.
            let p = a.realloc(p, layout, HUGE_FROM + 1000);
            let layout = Layout::from_size_align(HUGE_FROM + 1000, 8).unwrap();
            let p = a.realloc(p, layout, 3 * HUGE_FROM);
            let layout = Layout::from_size_align(3 * HUGE_FROM, 8).unwrap();
            let s = std::slice::from_raw_parts(p, HUGE_FROM + 123);
            assert!(s.iter().enumerate().all(|(i, &b)| b == i as u8));
            let p = a.realloc(p, layout, 1000);
            let s = std::slice::from_raw_parts(p, 1000);
            assert!(s.iter().enumerate().all(|(i, &b)| b == i as u8));
            a.dealloc(p, Layout::from_size_align(1000, 8).unwrap());
            // Small ones go to the system allocator.
            let small = Layout::from_size_align(64, 8).unwrap();
            let q = a.alloc(small);
            assert!(!q.is_null());
            a.dealloc(q, small);
        }
    }
}
