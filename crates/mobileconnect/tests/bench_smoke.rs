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

/// Runs `mobileconnect bench ARGS --json` and returns its JSON lines.
fn bench_json(args: &[&str]) -> Vec<Value> {
    let out = Command::new(BIN)
        .arg("bench")
        .args(args)
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {args:?} failed: {stderr}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn bench_userinfo_runs_on_tokens_from_real_logins() {
    let objects = bench_json(&[
        "--scenario",
        "userinfo",
        "--duration",
        "500ms",
        "--concurrency",
        "2",
        "--subscribers",
        "4",
    ]);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let u = &objects[0];
    assert_eq!(u["scenario"], "userinfo");
    assert_eq!(u["target"], "mobileconnect");
    assert!(u["ops"].as_u64().unwrap() > 0, "{u}");
    assert_eq!(u["errors"], 0, "{u}");
    assert!(u["floor_fraction"].is_null(), "userinfo signs nothing: {u}");
    assert!(u["cpu_ms_per_op"].as_f64().is_some(), "{u}");
}

#[test]
fn bench_http_floor_measures_requests_that_do_nothing() {
    let objects = bench_json(&[
        "--scenario",
        "http_floor",
        "--duration",
        "500ms",
        "--concurrency",
        "2",
        "--subscribers",
        "4",
    ]);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let h = &objects[0];
    assert_eq!(h["scenario"], "http_floor");
    assert!(h["ops"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(h["errors"], 0, "{h}");
    assert!(h["floor_fraction"].is_null(), "healthz signs nothing: {h}");
}

#[test]
fn bench_pending_leaves_every_request_pending_in_the_store() {
    let objects = bench_json(&[
        "--scenario",
        "pending",
        "--pending",
        "40",
        "--concurrency",
        "4",
        "--duration",
        "500ms",
    ]);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let p = &objects[0];
    assert_eq!(p["scenario"], "pending");
    assert_eq!(p["started"], 40, "{p}");
    assert_eq!(p["errors"], 0, "{p}");
    assert_eq!(p["pending_in_store"], 40, "{p}");
    assert!(p["ciba_login_while_pending_ms"].as_f64().is_some(), "{p}");
    assert!(p["rss_after_kib"].as_u64().is_some_and(|k| k > 0), "{p}");
}

#[test]
fn bench_idle_measures_a_real_sandbox_process() {
    let objects = bench_json(&["--scenario", "idle", "--duration", "500ms"]);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let i = &objects[0];
    assert_eq!(i["scenario"], "idle");
    assert_eq!(i["process"], "mobileconnect sandbox");
    assert!(i["rss_kib"].as_u64().is_some_and(|k| k > 1024), "{i}");
}

#[test]
fn bench_discovery_imports_loads_and_answers_lookups() {
    // A small copy of the 10-million-number run of `bench/run.sh`: same code path (CSV
    // import, index load, checked lookups), a few thousand numbers.
    let objects = bench_json(&[
        "discovery",
        "--entries",
        "5000",
        "--ranges",
        "10",
        "--operators",
        "3",
        "--threads",
        "2",
        "--duration",
        "0.2",
    ]);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let d = &objects[0];
    assert_eq!(d["scenario"], "discovery");
    assert_eq!(d["ported_entries"], 5000, "{d}");
    assert_eq!(d["ranges"], 10, "{d}");
    assert_eq!(d["wrong_answers"], 0, "{d}");
    assert!(d["lookups"].as_u64().is_some_and(|n| n > 0), "{d}");
    assert!(d["lookups_per_sec"].as_f64().is_some(), "{d}");
    assert!(
        d["answers_with_subscriber_id_per_sec"].as_f64().is_some(),
        "{d}"
    );
}
