//! The allocators and their settings.
//!
//! Rust's allocations go to mimalloc: glibc's malloc and free were 13 % of the CPU of a
//! `client_credentials` request under load (many small, short-lived blocks freed on other
//! threads), and mimalloc made logins 10–15 % and token requests 12 % faster
//! (docs/benchmarks.md). SQLite and aws-lc still allocate from glibc.
//!
//! Both allocators read their settings from the environment once, at process start, so the
//! binary sets the ones below and re-executes itself (same pid, same arguments) unless the
//! operator set them already (their values win). Without `unsafe` this is the way to set
//! them.
//! - Argon2 (PIN hashes and checks) allocates 19 MiB per call. mimalloc keeps freed memory
//!   committed for a while and commits its arenas eagerly: an idle sandbox that had hashed
//!   its test PINs stayed at ~80 MiB. Purging at once and committing on demand brings it to
//!   ~28 MiB, and neither setting measurably slows the login or token benchmarks.
//! - glibc raises its mmap threshold to the size of the first large block freed, after
//!   which such blocks stay resident in an arena; a fixed threshold (which also turns the
//!   dynamic adjustment off) returns them to the system at once.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The settings, as environment variables the allocators read at start.
#[cfg(target_os = "linux")]
const SETTINGS: &[(&str, &str)] = &[
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    // 128 KiB: glibc's default threshold, fixed.
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
];

/// Re-executes the binary with the settings the environment lacks; returns when none is
/// missing or re-executing is not possible (the process then runs with the defaults).
pub fn apply_settings() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let missing: Vec<_> = SETTINGS
            .iter()
            .filter(|(var, _)| std::env::var_os(var).is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .envs(missing.iter().map(|&&(var, value)| (var, value)))
            .exec();
        // `exec` only returns on failure.
        eprintln!("note: running with the allocators' default settings ({err})");
    }
}
