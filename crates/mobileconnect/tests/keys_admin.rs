//! `mobileconnect admin keys list|rotate` on the real binary, against the store of a running
//! `serve` node: the listing shows every key without private parts, a planned rotation
//! publishes the next key first (the node's JWKS shows it, it does not sign yet), and
//! `--immediate` makes it sign at once while the old key stays published. The node picks
//! changes up through its key worker (`gateway.keys.refresh_secs = 1` here); waits are
//! bounded polls on what the node serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::*;

const MSISDN: &str = "447700900377";

/// Runs `mobileconnect admin --config <config> keys <args>`; returns (success, stdout, stderr).
fn keys_cmd(dir: &Path, config: &Path, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MC_") {
            c.env_remove(&k);
        }
    }
    let out = c
        .env("RUST_LOG", "warn")
        .arg("admin")
        .arg("--config")
        .arg(config)
        .arg("keys")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keys_json(dir: &Path, config: &Path, args: &[&str]) -> Value {
    let (ok, out, err) = keys_cmd(dir, config, args);
    assert!(ok, "admin keys {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn of_state<'a>(list: &'a Value, key_use: &str, state: &str) -> Vec<&'a Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == key_use && k["state"] == state)
        .collect()
}

/// One login through the node's HTTP API (the virtual phone approves); the id_token's kid.
async fn login_kid(http: &reqwest::Client, base: &str, sp: &Sp, state: &str) -> String {
    let id = authorize(http, base, sp, MSISDN, state, None)
        .await
        .unwrap();
    let challenge = eventually("the phone's challenge", DEADLINE, || async {
        phone_challenges(http, base, MSISDN, 1)
            .await
            .ok()
            .and_then(|c| c.first().cloned())
    })
    .await;
    let cid = challenge["id"].as_str().unwrap().to_owned();
    phone_answer(http, base, MSISDN, &cid, true, None)
        .await
        .unwrap();
    let back = wait_for_redirect(http, base, &id, None).await.unwrap();
    let code = query_of(&back).get("code").cloned().expect("a code");
    let (status, tokens) = redeem(http, base, sp, &code, None).await.unwrap();
    assert_eq!(status, 200, "{tokens}");
    jwt_part(tokens["id_token"].as_str().unwrap(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_keys_list_and_rotate_on_a_running_node() {
    let tmp = TempDir::new("keys-admin");
    let dir = tmp.path();
    let spec = NodeSpec {
        database_url: format!("sqlite:{}", dir.join("mc.db").display()),
        kek_file: dir.join("kek.hex"),
        json_logs: false,
        extra_toml: "[gateway.keys]\nrefresh_secs = 1\n".into(),
    };
    let node = start_serve(dir, "keys", &spec, None).await;
    let config = dir.join("keys.toml");
    let http = client();
    let sp = register_sp(&http, &node.base, "KeysShop", serde_json::json!({})).await;
    provision(&http, &node.base, MSISDN).await;

    // list: one active key per use, no private part, times as numbers and UTC.
    let list = keys_json(dir, &config, &["list"]);
    let sig = of_state(&list, "sig", "active");
    assert_eq!(sig.len(), 1, "{list:#}");
    assert_eq!(of_state(&list, "enc", "active").len(), 1, "{list:#}");
    let k1 = sig[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(sig[0]["alg"], "RS256");
    assert_eq!(sig[0]["published"], true);
    assert!(sig[0]["created_at"].is_i64());
    assert!(sig[0]["created"].as_str().unwrap().ends_with('Z'));
    let text = list.to_string();
    assert!(
        !text.contains("private") && !text.contains("\"d\""),
        "{text}"
    );
    assert_eq!(login_kid(&http, &node.base, &sp, "s1").await, k1);

    // rotate: publish-ahead first. The new key is published, scheduled, not signing.
    let planned = keys_json(dir, &config, &["rotate"]);
    assert_eq!(planned["outcome"], "scheduled", "{planned:#}");
    let k2 = planned["kid"].as_str().unwrap().to_owned();
    assert!(planned["activates_at"].as_i64().unwrap() > sig[0]["created_at"].as_i64().unwrap());
    eventually("the node publishes the next key", DEADLINE, || async {
        let jwks = get_json(&http, &format!("{}/jwks", node.base)).await;
        sig_kids(&jwks).contains(&k2).then_some(())
    })
    .await;
    let list = keys_json(dir, &config, &["list"]);
    assert_eq!(of_state(&list, "sig", "next")[0]["kid"], k2.as_str());
    assert_eq!(login_kid(&http, &node.base, &sp, "s2").await, k1);

    // rotate --immediate: the published next key signs now; the old one stays published.
    let done = keys_json(dir, &config, &["rotate", "--immediate"]);
    assert_eq!(done["outcome"], "rotated", "{done:#}");
    assert_eq!(done["kid"], k2.as_str());
    assert_eq!(done["retired"], k1.as_str());
    let list = keys_json(dir, &config, &["list"]);
    assert_eq!(of_state(&list, "sig", "active")[0]["kid"], k2.as_str());
    let retiring = of_state(&list, "sig", "retiring");
    assert_eq!(retiring[0]["kid"], k1.as_str());
    assert!(retiring[0]["remove_at"].is_i64());
    let mut n = 0;
    eventually("the node signs with the new key", DEADLINE, || {
        n += 1;
        let state = format!("s3-{n}");
        let (http, base, sp, k2) = (&http, &node.base, &sp, &k2);
        async move { (login_kid(http, base, sp, &state).await == *k2).then_some(()) }
    })
    .await;
    let jwks = get_json(&http, &format!("{}/jwks", node.base)).await;
    assert!(sig_kids(&jwks).contains(&k1) && sig_kids(&jwks).contains(&k2));

    // The encryption key too: a new one is published in place of the old.
    let enc_before = of_state(&list, "enc", "active")[0]["kid"].clone();
    let done = keys_json(dir, &config, &["rotate", "--use", "enc"]);
    assert_eq!(done["outcome"], "rotated", "{done:#}");
    assert_eq!(done["retired"], enc_before);
    let list = keys_json(dir, &config, &["list"]);
    assert_eq!(of_state(&list, "enc", "retiring")[0]["published"], false);

    // Bad input is refused with one line, and a missing key-encryption key is not replaced
    // by a new one (it could not open the stored keys).
    let (ok, _, err) = keys_cmd(dir, &config, &["rotate", "--use", "nope"]);
    assert!(!ok && err.contains("--use"), "{err}");
    std::fs::rename(dir.join("kek.hex"), dir.join("kek.moved")).unwrap();
    let (ok, _, err) = keys_cmd(dir, &config, &["rotate"]);
    assert!(!ok, "rotated without the key-encryption key");
    assert!(
        err.contains("keys.kek_file") && err.contains("not found"),
        "{err}"
    );
    assert!(!dir.join("kek.hex").exists(), "a new KEK was created");
    // Listing needs no key-encryption key.
    keys_json(dir, &config, &["list"]);
    drop(node);
}
