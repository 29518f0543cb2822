//! glibc's allocator and Argon2: every PIN hash or check allocates 19 MiB (Argon2id's
//! memory cost). glibc serves the first such block with `mmap`, but when it is freed glibc
//! raises its mmap threshold to that size, so every later block comes from an arena and
//! stays resident after use: a sandbox that hashed its test PINs idled at ~65 MB instead of
//! ~45 MB, and a node checking LoA3 PINs on several threads keeps 19 MiB per thread. A
//! fixed threshold (`MALLOC_MMAP_THRESHOLD_`, which also turns the dynamic adjustment off)
//! returns those blocks to the system at once. glibc reads it only at process start, so
//! the binary sets it and re-executes itself (same pid, same arguments) unless the operator
//! set it already. Without `unsafe` (`mallopt`) this is the way to set it.

/// 128 KiB: glibc's default threshold, fixed.
const MMAP_THRESHOLD: &str = "131072";
const VAR: &str = "MALLOC_MMAP_THRESHOLD_";

/// Re-executes the binary with a fixed mmap threshold; returns when that is not needed or
/// not possible (the process then runs with glibc's defaults).
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(VAR).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(VAR, MMAP_THRESHOLD)
            .exec();
        // `exec` only returns on failure.
        eprintln!("note: running with glibc's default allocator settings ({err})");
    }
}
