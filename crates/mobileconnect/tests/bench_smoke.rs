//! `mobileconnect bench` runs end to end for a moment: the real binary starts its in-process
//! gateway, provisions a few subscribers, drives whole logins over loopback and prints one
//! JSON object. No timing is asserted (the figures live in `docs/benchmarks.md`): only that
//! logins completed, none failed, and the object carries what `bench/run.sh` reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mobileconnect");

#[test]
fn bench_login_completes_logins_and_prints_json() {
    let out = Command::new(BIN)
        .args([
            "bench",
            "--scenario",
            "login",
            "--duration",
            "1s",
            "--concurrency",
            "2",
            "--subscribers",
            "4",
            "--json",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(objects.len(), 1, "one object per scenario: {stdout}");
    let login = &objects[0];
    assert_eq!(login["scenario"], "login");
    assert!(login["logins"].as_u64().unwrap() > 0, "{login}\n{stderr}");
    assert_eq!(login["errors"], 0, "{login}");
    for key in [
        "logins_per_sec",
        "p50_ms",
        "p99_ms",
        "floor_fraction",
        "rsa2048_sign_per_sec_all_cores",
    ] {
        assert!(
            login[key].as_f64().is_some_and(|x| x > 0.0),
            "{key}: {login}"
        );
    }
    assert!(
        login["peak_rss_kib"].as_u64().is_some_and(|k| k > 0),
        "{login}"
    );
}

#[test]
fn bench_refuses_fewer_subscribers_than_workers() {
    let out = Command::new(BIN)
        .args([
            "bench",
            "--scenario",
            "login",
            "--concurrency",
            "8",
            "--subscribers",
            "4",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--subscribers"), "{stderr}");
}
