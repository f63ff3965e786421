//! The C allocator, where it changes what a build holds (glibc only; elsewhere [`trim`] does
//! nothing).
//!
//! Memory freed by Rust goes back to malloc, not to the system. After a sort has written a
//! run and dropped its buffer, that buffer's pages stayed resident: freed blocks of the build
//! thread's heap, and of the loader threads' own heaps ("arenas": a block goes back to the
//! heap of the thread that allocated it, and each source's loader had left a sort buffer's
//! worth in its heap). With 2M channels in 4 sources under `--memory-limit 256MiB`
//! (`sort = "number"`, `preserve` numbering) the peak was 771 MiB. Giving the free pages back
//! after each run (and the accounting and buffering changes in `sorter.rs`) brings it to 242
//! MiB. Limiting glibc to one arena (`M_ARENA_MAX`) gave the same figure but made the scale
//! job (four sources stored while a guide is parsed) 30 to 45% slower; it is not done.

/// Give the free pages of every malloc heap back to the system, so that resident size again
/// tracks what is in use. It walks the heaps' free lists: cheap once per sort run (tens of
/// runs a build), not something to call per channel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory that is free.
    unsafe {
        libc::malloc_trim(0);
    }
}
