//! The program's heap: QuickJS allocates through [`Heap`], which enforces the memory limit
//! and remembers that the limit was reached. QuickJS alone cannot always say so: out of
//! memory while raising the error, it throws `null`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rquickjs::allocator::Allocator;

/// A `malloc`-backed allocator with a limit on the bytes in use.
pub(crate) struct Heap {
    used: usize,
    limit: usize,
    exceeded: Arc<AtomicBool>,
}

impl Heap {
    /// A heap of at most `limit` bytes; `exceeded` is set when an allocation is refused.
    pub(crate) fn new(limit: usize, exceeded: Arc<AtomicBool>) -> Heap {
        Heap {
            used: 0,
            limit,
            exceeded,
        }
    }

    fn admits(&mut self, more: usize) -> bool {
        if self.used.saturating_add(more) > self.limit {
            self.exceeded.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: `ptr` came from this allocator's malloc, calloc or realloc.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

// SAFETY: every pointer handed out comes from libc's malloc family and is freed by it; the
// accounting only reads sizes malloc reports for those pointers.
unsafe impl Allocator for Heap {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admits(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain malloc; a null result is passed on as QuickJS expects.
        let ptr: *mut u8 = unsafe { libc::malloc(size.max(1)) }.cast();
        if !ptr.is_null() {
            self.used += usable(ptr);
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admits(total) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain calloc.
        let ptr: *mut u8 = unsafe { libc::calloc(count.max(1), size.max(1)) }.cast();
        if !ptr.is_null() {
            self.used += usable(ptr);
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        self.used = self.used.saturating_sub(usable(ptr));
        // SAFETY: the caller passes a pointer this allocator handed out.
        unsafe { libc::free(ptr.cast()) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        let old = usable(ptr);
        if new_size > old && !self.admits(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller passes a pointer this allocator handed out.
        let moved: *mut u8 = unsafe { libc::realloc(ptr.cast(), new_size.max(1)) }.cast();
        if !moved.is_null() {
            self.used = self.used.saturating_sub(old) + usable(moved);
        }
        moved
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        usable(ptr)
    }
}
