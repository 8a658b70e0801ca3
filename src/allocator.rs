//! The process's heap settings, applied once at start, before any thread exists.
//!
//! Contract:
//! - On Linux with glibc, malloc is held to [`ARENAS`] arenas unless the user set
//!   `MALLOC_ARENA_MAX` (glibc reads that itself, and it wins). glibc otherwise gives each
//!   thread that meets a locked arena a new one, up to 8 per core; the sync's work moves between
//!   tokio's workers and blocking threads, so every arena ends up holding its own free pages of
//!   the same short-lived page bodies and Parquet buffers. Measured (all streams, simulator
//!   scale 50, default settings): peak RSS 193–214 MB with glibc's default, 173–188 MB with two
//!   arenas, the same CPU within the VM's noise.
//! - Elsewhere (musl, macOS, Windows) nothing is changed.
//! - A leaf: imports nothing from the crate.

/// Arenas glibc's malloc may create (one per core of the 2-core machines this is measured
/// on; the sync's CPU work runs on about that many threads at once).
pub const ARENAS: i32 = 2;

/// Applies the heap settings. Call first thing in `main`: a cap set after threads have
/// created their arenas does not shrink them.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes malloc's tuning parameters; with no other thread running
        // there is no allocation in flight that could observe the change half-way.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
