//! The global allocator of wasmlens's binaries: mimalloc, which serves a block freed on
//! another thread (a span made on a request's thread and dropped on the exporter's)
//! without the locks glibc's malloc takes.
//!
//! It is asked the way std's `System` allocator asks malloc: plainly wherever the alignment
//! asked for is one every mimalloc block has, and for an aligned block only otherwise. The
//! `mimalloc` crate asks for an aligned block every time, and mimalloc serves an aligned
//! request for more than 1 KiB, or one whose size class has no free block at hand, on a
//! slower path that over-allocates (callgrind, a hello request: 1,900 instructions fewer
//! with telemetry off, 4,100 with it on).

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment of every block mimalloc returns (`MI_MAX_ALIGN_SIZE`), as malloc's is
/// std's `MIN_ALIGN`.
const GUARANTEED_ALIGN: usize = 16;

/// Declare it with `#[global_allocator] static ALLOCATOR: Mimalloc = Mimalloc;`.
pub struct Mimalloc;

/// Whether a block of `size` bytes needs no more alignment than any block has. A block
/// smaller than its alignment falls in a size class that does not keep it (as std
/// reasons for malloc).
#[inline]
fn needs_no_alignment(align: usize, size: usize) -> bool {
    align <= GUARANTEED_ALIGN && align <= size
}

/// Serves `layout` with `plain(size)` where mimalloc's own alignment is enough, else with
/// `aligned(size, align)`.
///
/// # Safety
/// The two must be mimalloc's allocation calls of one kind (plain or zeroed).
#[inline]
unsafe fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: FFI calls with no preconditions beyond a power-of-two alignment, which a
    // `Layout` has.
    unsafe {
        if needs_no_alignment(align, size) {
            plain(size).cast()
        } else {
            aligned(size, align).cast()
        }
    }
}

// SAFETY: every block comes from mimalloc and goes back to it; mimalloc's `mi_free` and
// `mi_realloc*` take a block of any alignment it returned, and the plain calls are made
// only where mimalloc's guaranteed alignment meets the layout's.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's two allocation calls.
        unsafe { allocate(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's two zeroing allocation calls.
        unsafe { allocate(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller gives back a block this allocator returned.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: the caller gives back a block this allocator returned, and a new size
        // that is not zero.
        unsafe {
            if needs_no_alignment(align, new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every layout gets a block of its alignment, whichever call serves it, and a block
    /// keeps its contents through reallocations that cross from one call to the other.
    #[test]
    fn blocks_have_their_alignment_and_keep_their_contents() {
        let allocator = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 15, 16, 17, 64, 1000, 1025, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                let aligned =
                    |block: *mut u8| !block.is_null() && (block as usize).is_multiple_of(align);
                // SAFETY: non-zero sizes; each block is written and read within its size,
                // and freed once, with the layout it has then.
                unsafe {
                    let zeroed = allocator.alloc_zeroed(layout);
                    assert!(aligned(zeroed), "{layout:?}");
                    assert!((0..size).all(|i| *zeroed.add(i) == 0), "{layout:?}");
                    allocator.dealloc(zeroed, layout);

                    let block = allocator.alloc(layout);
                    assert!(aligned(block), "{layout:?}");
                    block.write_bytes(0xa5, size);
                    let grown = allocator.realloc(block, layout, grown_layout.size());
                    assert!(aligned(grown), "{layout:?} grown");
                    assert!((0..size).all(|i| *grown.add(i) == 0xa5), "{layout:?}");
                    let shrunk = allocator.realloc(grown, grown_layout, 1);
                    assert!(aligned(shrunk), "{layout:?} shrunk");
                    assert_eq!(*shrunk, 0xa5);
                    allocator.dealloc(shrunk, Layout::from_size_align(1, align).unwrap());
                }
            }
        }
    }
}
