//! The extension's global allocator: the system allocator, plus a tiny cache of recently freed
//! large blocks.
//!
//! Output arrays of a few MiB and more are `mmap`ed by the C allocator and unmapped again when
//! numpy drops them, so every call paid for faulting in and zeroing fresh pages, which on this
//! kind of machine costs about as much as the reduction itself. Pipelines call the kernel again
//! and again with the same shapes, so keeping a couple of freed blocks for an exact-size reuse
//! removes most of that. The cache is bounded (`SLOTS` blocks, `MAX_KEPT` bytes) and only holds
//! blocks this library allocated.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// Blocks smaller than this come from the C allocator's own free lists anyway.
const MIN_BLOCK: usize = 4 << 20;
const SLOTS: usize = 2;
const MAX_KEPT: usize = 160 << 20;

/// (size, align, address); size 0 marks a free slot. Addresses are stored as integers so the
/// static is `Sync`; a fixed array because the allocator must not allocate while locked.
static CACHE: Mutex<[(usize, usize, usize); SLOTS]> = Mutex::new([(0, 0, 0); SLOTS]);

pub struct RecyclingAlloc;

fn take(l: Layout) -> Option<*mut u8> {
    let mut c = CACHE.lock().ok()?;
    let slot = c.iter_mut().find(|s| s.0 == l.size() && s.1 == l.align())?;
    let p = slot.2 as *mut u8;
    *slot = (0, 0, 0);
    Some(p)
}

fn keep(p: *mut u8, l: Layout) -> bool {
    let Ok(mut c) = CACHE.lock() else {
        return false;
    };
    let kept: usize = c.iter().map(|s| s.0).sum();
    if kept + l.size() > MAX_KEPT {
        return false;
    }
    match c.iter_mut().find(|s| s.0 == 0) {
        Some(slot) => {
            *slot = (l.size(), l.align(), p as usize);
            true
        }
        None => false,
    }
}

unsafe impl GlobalAlloc for RecyclingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() >= MIN_BLOCK {
            if let Some(p) = take(l) {
                return p;
            }
        }
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(l) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() >= MIN_BLOCK {
            if let Some(p) = take(l) {
                // Zeroing memory that is already mapped is far cheaper than faulting in pages.
                // SAFETY: `p` is a live block of `l.size()` bytes owned by us.
                unsafe { std::ptr::write_bytes(p, 0, l.size()) };
                return p;
            }
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if l.size() >= MIN_BLOCK && keep(p, l) {
            return;
        }
        // SAFETY: `p` came from `System` with layout `l` (cached blocks are handed out only for
        // the exact layout they were allocated with).
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        if l.size() < MIN_BLOCK && new_size < MIN_BLOCK {
            // SAFETY: small blocks never enter the cache, so `p` is a plain `System` block.
            return unsafe { System.realloc(p, l, new_size) };
        }
        // SAFETY: the new layout is valid (same alignment, size checked by the caller).
        let new_l = unsafe { Layout::from_size_align_unchecked(new_size, l.align()) };
        // SAFETY: allocate, copy the common prefix, free the old block.
        unsafe {
            let q = self.alloc(new_l);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                self.dealloc(p, l);
            }
            q
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_blocks_round_trip() {
        // Through the global allocator (this crate's, in the test binary too).
        for _ in 0..3 {
            let mut v = vec![1u8; super::MIN_BLOCK + 8];
            assert!(v.iter().all(|&x| x == 1));
            v.resize(2 * super::MIN_BLOCK, 2);
            assert_eq!(v[super::MIN_BLOCK + 7], 1);
            assert_eq!(v[2 * super::MIN_BLOCK - 1], 2);
            let z = vec![0u32; super::MIN_BLOCK / 4];
            assert!(z.iter().all(|&x| x == 0));
        }
        let z = vec![0u8; 2 * super::MIN_BLOCK];
        assert!(
            z.iter().all(|&x| x == 0),
            "reused blocks are zeroed for alloc_zeroed"
        );
    }
}
