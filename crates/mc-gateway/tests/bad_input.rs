//! Bad input never yields a 5xx or a panic, and leaves the store intact: after each barrage
//! the client and subscriber lists are unchanged, `/healthz` answers and a normal login
//! still completes. Malformed requests are sent over a raw socket where an HTTP client
//! would have normalised them; the fuzz loop is deterministic (xorshift, fixed seed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod flows;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use flows::*;

const MSISDN: &str = "447700900301";
/// Used only by the after-the-barrage login, so nothing in a barrage can make it busy.
const CONTROL_MSISDN: &str = "447700900777";

/// A raw HTTP/1.1 exchange: what a status line and headers said, and the body.
#[derive(Debug)]
struct Raw {
    status: Option<u16>,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Sends `request` as is (it should say `Connection: close`) and reads the whole answer.
async fn raw(g: &Gateway, request: Vec<u8>) -> Raw {
    raw_with(g, request, false).await
}

/// `raw`, optionally closing our sending side right after the request (a client that
/// went away mid-body).
async fn raw_with(g: &Gateway, request: Vec<u8>, half_close: bool) -> Raw {
    let addr = g.addr;
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        // The server may answer (and close) before it has read everything: ignore write errors.
        let _ = s.write_all(&request);
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(buf.len());
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok());
        let body = buf.get(split + 4..).unwrap_or_default().to_vec();
        Raw { status, head, body }
    })
    .await
    .unwrap()
}

fn get_request(target: &[u8], extra_headers: &str) -> Vec<u8> {
    let mut r = b"GET ".to_vec();
    r.extend_from_slice(target);
    r.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra_headers}Connection: close\r\n\r\n")
            .as_bytes(),
    );
    r
}

fn post_request(path: &str, content_type: Option<&str>, extra: &str, body: &[u8]) -> Vec<u8> {
    let ct = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{ct}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// What must hold after every barrage.
struct Baseline {
    clients: String,
    subscribers: String,
    sp: Sp,
}

async fn snapshot(g: &Gateway) -> (String, String) {
    let mut clients = g.store().list_clients().await.unwrap();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let mut subscribers = g.store().list_subscribers().await.unwrap();
    subscribers.sort_by(|a, b| a.id.cmp(&b.id));
    (format!("{clients:?}"), format!("{subscribers:?}"))
}

/// A gateway with the shop, a subscriber for the bad requests and one for the control login.
async fn setup() -> (Gateway, Baseline) {
    let g = Gateway::start().await;
    let sp = g.shop().await;
    g.subscriber(MSISDN, None).await;
    g.subscriber(CONTROL_MSISDN, None).await;
    let (clients, subscribers) = snapshot(&g).await;
    (
        g,
        Baseline {
            clients,
            subscribers,
            sp,
        },
    )
}

/// The gateway still answers, the store is unchanged, and a normal login completes.
async fn assert_intact(g: &Gateway, b: &Baseline) {
    let health = g
        .http()
        .get(format!("{}/healthz", g.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let (clients, subscribers) = snapshot(g).await;
    assert_eq!(clients, b.clients, "the client list changed");
    assert_eq!(subscribers, b.subscribers, "the subscriber list changed");
    let code = code_for(g, &b.sp, CONTROL_MSISDN, |_| {}).await;
    let tokens = redeem(g, &b.sp, &code).await;
    assert!(tokens["id_token"].is_string());
}

/// Records `status` for `what` unless it is a 4xx (or, where `redirect_ok`, an error
/// redirect to the SP's registered URI).
fn check(
    failures: &mut Vec<String>,
    what: &str,
    status: Option<u16>,
    location: Option<&str>,
    sp: &Sp,
    redirect_ok: bool,
) {
    match status {
        Some(s) if (400..500).contains(&s) => {}
        Some(302) if redirect_ok => {
            let to_sp = location.is_some_and(|l| {
                l.starts_with(&format!("{}?", sp.redirect_uri)) && l.contains("error=")
            });
            if !to_sp {
                failures.push(format!("{what}: 302 to {location:?}"));
            }
        }
        other => failures.push(format!("{what}: status {other:?}")),
    }
}

#[tokio::test]
async fn malformed_query_strings_are_refused_on_a_page() {
    let (g, b) = setup().await;
    let valid = Q::valid(&b.sp, MSISDN).encode();
    let long_hint = format!("{valid}&x=1").replace(
        &format!("login_hint=MSISDN%3A{MSISDN}"),
        &format!("login_hint=MSISDN%3A{}", "4".repeat(10 * 1024)),
    );
    let many: String = (0..200).map(|i| format!("p{i}=v{i}&")).collect();
    let cases: Vec<(&str, String, bool)> = vec![
        ("bad escape %G1", format!("{valid}&x=%G1"), false),
        ("truncated escape %4", format!("{valid}&x=%4"), false),
        ("lone %", format!("{valid}&x=%"), false),
        ("escape in a name", format!("{valid}&%ZZ=1"), false),
        ("invalid UTF-8 %FF%FE", format!("{valid}&x=%FF%FE"), false),
        (
            "invalid UTF-8 in client_id",
            valid.replacen("client_id=", "client_id=%C3%28", 1),
            false,
        ),
        (
            "overlong UTF-8 encoding of '/'",
            format!("{valid}&x=%C0%AF"),
            false,
        ),
        ("UTF-16 surrogate", format!("{valid}&x=%ED%A0%80"), false),
        (
            "20 KB query",
            format!("{valid}&pad={}", "a".repeat(20 * 1024)),
            false,
        ),
        ("10 KB login_hint", long_hint, false),
        ("200 parameters", format!("{many}{valid}"), false),
        ("only separators", "&&&=&==&".into(), false),
        ("empty query", String::new(), false),
        (
            "NUL in client_id",
            valid.replacen("client_id=", "client_id=%00", 1),
            false,
        ),
        (
            "NUL in redirect_uri",
            valid.replacen("redirect_uri=", "redirect_uri=%00", 1),
            false,
        ),
        // After the redirect URI is verified, a NUL is an error redirect like any other.
        (
            "NUL in state",
            valid.replacen("state=st-1", "state=st%001", 1),
            true,
        ),
        (
            "NUL in login_hint",
            valid.replacen("MSISDN%3A", "MSISDN%3A%00", 1),
            true,
        ),
        (
            "2 KB login_hint (over its own bound, under the request bound)",
            valid.replacen(
                &format!("MSISDN%3A{MSISDN}"),
                &format!("MSISDN%3A{}", "4".repeat(2048)),
                1,
            ),
            true,
        ),
        (
            "10 KB state and nonce over POST's bound too",
            format!("{valid}&s2={}", "s".repeat(9000)),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (name, query, redirect_ok) in &cases {
        let r = raw(
            &g,
            get_request(format!("/authorize?{query}").as_bytes(), ""),
        )
        .await;
        check(
            &mut failures,
            &format!("GET {name}"),
            r.status,
            r.header("location").as_deref(),
            &b.sp,
            *redirect_ok,
        );
        if !redirect_ok && r.header("location").is_some() {
            failures.push(format!("GET {name}: has a Location"));
        }
        let r = raw(
            &g,
            post_request(
                "/authorize",
                Some("application/x-www-form-urlencoded"),
                "",
                query.as_bytes(),
            ),
        )
        .await;
        check(
            &mut failures,
            &format!("POST {name}"),
            r.status,
            r.header("location").as_deref(),
            &b.sp,
            *redirect_ok,
        );
    }
    // Raw bytes the HTTP layer itself must refuse (not URL-encodable at all).
    for (name, target) in [
        (
            "raw NUL in the target",
            b"/authorize?client_id=a\0b".to_vec(),
        ),
        (
            "raw 0xFF in the target",
            b"/authorize?client_id=\xff\xfe".to_vec(),
        ),
        ("raw DEL in the target", b"/authorize?x=\x7f".to_vec()),
        ("raw tab in the target", b"/authorize?x=\ty".to_vec()),
    ] {
        let r = raw(&g, get_request(&target, "")).await;
        check(&mut failures, name, r.status, None, &b.sp, false);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(g.phone(MSISDN).pending().await.is_empty());
    assert_intact(&g, &b).await;
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let (g, b) = setup().await;
    let mut q = Q::valid(&b.sp, MSISDN);
    q.add("utm_source", "newsletter")
        .add("x-custom", "1")
        .add("foo", "")
        .add("mc_future_param", "{\"a\":[1,2]}")
        .add("ui_locales", "en-GB fr")
        .add("claims_locales", "en")
        .add("id_token_hint", "a.b.c")
        .add("dtbs", "data")
        .add("\0", "NUL as a name");
    let back = login(&g, &q, MSISDN, &b.sp.redirect_uri).await;
    let p = query_of(&back);
    assert!(p.contains_key("code"), "{back}");
    assert_eq!(p["state"], "st-1");
    assert!(
        !p.contains_key("utm_source"),
        "unknown parameters are not echoed"
    );
    assert_intact(&g, &b).await;
}

/// Deterministic pseudo-random bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn bodies_of_random_bytes_wrong_types_empty_or_huge_are_4xx() {
    let (g, b) = setup().await;
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let form = Some("application/x-www-form-urlencoded");
    let admin = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    let basic_auth = format!(
        "Authorization: {}\r\n",
        basic(&b.sp.client_id, &b.sp.secret)
    );
    let mut failures = Vec::new();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for path in ["/authorize", "/token", "/userinfo", "/authorize/number/x"] {
        for i in 0..5 {
            let n = 1 + rng.below(4096);
            let body = rng.bytes(n);
            cases.push((
                format!("POST {path} random bytes #{i} (form type)"),
                post_request(path, form, &basic_auth, &body),
            ));
        }
        for ct in [
            None,
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencoded; charset=\u{1}"),
            Some("\u{7f}"),
        ] {
            cases.push((
                format!("POST {path} as {ct:?}"),
                post_request(
                    path,
                    ct,
                    &basic_auth,
                    b"{\"grant_type\":\"authorization_code\",\"client_id\":1}",
                ),
            ));
        }
        cases.push((
            format!("POST {path} empty body"),
            post_request(path, form, "", b""),
        ));
        cases.push((
            format!("POST {path} empty body, no type"),
            post_request(path, None, "", b""),
        ));
        cases.push((
            format!("POST {path} 1 MB"),
            post_request(path, form, &basic_auth, &vec![b'a'; 1024 * 1024]),
        ));
        cases.push((
            format!("POST {path} NUL bytes"),
            post_request(
                path,
                form,
                &basic_auth,
                b"grant_type=\0&code=\0\0&client_id=%00",
            ),
        ));
    }
    // A Content-Length that lies (the client sends less, then goes away): a 4xx or a
    // closed connection, never a 5xx, and the server does not wait for ever.
    for path in ["/token", "/authorize", "/admin/v1/clients"] {
        let r = raw_with(
            &g,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\nConnection: close\r\n\r\nab")
                .into_bytes(),
            true,
        )
        .await;
        if r.status.is_some_and(|s| !(400..500).contains(&s)) {
            failures.push(format!("{path} truncated body: {:?}", r.status));
        }
    }
    // Headers that are not text.
    for (path, header) in [
        ("/token", b"Authorization: Basic \xff\xfe\r\n".to_vec()),
        ("/token", b"Authorization: Basic //79\r\n".to_vec()), // base64 of 0xff 0xfe 0xfd
        ("/token", b"Authorization: Basic Og==\r\n".to_vec()), // ":"
        ("/token", b"Authorization: Basic\r\n".to_vec()),
        ("/userinfo", b"Authorization: Bearer \xff\xfe\r\n".to_vec()),
        (
            "/userinfo",
            format!("Authorization: Bearer {}\r\n", "t".repeat(8 * 1024)).into_bytes(),
        ),
        (
            "/admin/v1/clients",
            b"Authorization: Bearer \xff\r\n".to_vec(),
        ),
    ] {
        let mut r = format!("POST {path} HTTP/1.1\r\nHost: x\r\n").into_bytes();
        r.extend_from_slice(&header);
        r.extend_from_slice(
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 18\r\nConnection: close\r\n\r\ngrant_type=password",
        );
        cases.push((
            format!(
                "POST {path} with header {:?}",
                String::from_utf8_lossy(&header).trim()
            ),
            r,
        ));
    }
    // Garbage JSON to the JSON (admin) endpoints.
    let deep = "[".repeat(100_000);
    let garbage: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"str\"".to_vec(),
        b"{\"name\":1}".to_vec(),
        b"{\"msisdn\":\"\\u0000\"}".to_vec(),
        b"{\"msisdn\":\"+447700900301\",\"pin\":\"\\u0000\\u0000\\u0000\\u0000\"}".to_vec(),
        b"{\"status\":\"\\ud800\"}".to_vec(),
        b"{\"pin\":1e999}".to_vec(),
        deep.into_bytes(),
        rng.bytes(512),
        vec![0u8; 64],
    ];
    for path in [
        "POST /admin/v1/clients",
        &format!("PUT /admin/v1/clients/{}", b.sp.client_id),
        &format!("PATCH /admin/v1/clients/{}", b.sp.client_id),
        "POST /admin/v1/subscribers",
        &format!("PATCH /admin/v1/subscribers/{MSISDN}"),
        &format!("PUT /admin/v1/subscribers/{MSISDN}/pin"),
    ] {
        let (method, p) = path.split_once(' ').unwrap();
        for (i, body) in garbage.iter().enumerate() {
            let mut r = format!(
                "{method} {p} HTTP/1.1\r\nHost: x\r\n{admin}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            cases.push((format!("{path} garbage JSON #{i}"), r));
        }
    }
    for (name, request) in cases {
        let r = raw(&g, request).await;
        check(&mut failures, &name, r.status, None, &b.sp, false);
    }
    // The same through an ordinary client, which must see an answer, not a broken pipe.
    for path in ["/authorize", "/token", "/admin/v1/clients"] {
        let resp = g
            .http()
            .post(format!("{}{path}", g.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body(vec![b'a'; 1024 * 1024])
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == 413 || r.status() == 400 => {}
            Ok(r) => failures.push(format!("reqwest 1 MB {path}: {}", r.status())),
            Err(e) => failures.push(format!("reqwest 1 MB {path}: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_intact(&g, &b).await;
}

#[tokio::test]
async fn unknown_or_absurd_session_paths_are_4xx() {
    let (g, b) = setup().await;
    let long = "w".repeat(10 * 1024);
    let unknown = "A".repeat(43);
    let mut failures = Vec::new();
    let html = "Accept: text/html\r\n";
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for id in [
        long.as_str(),
        unknown.as_str(),
        "x",
        "%00",
        "..%2F..%2Ftoken",
        "%FF%FE",
        "a%20b",
    ] {
        for (label, accept) in [("headless", ""), ("browser", html)] {
            cases.push((
                format!("GET /authorize/wait/{:.40} ({label})", id),
                get_request(format!("/authorize/wait/{id}").as_bytes(), accept),
            ));
        }
        cases.push((
            format!("GET /authorize/number/{:.40}", id),
            get_request(format!("/authorize/number/{id}").as_bytes(), html),
        ));
        cases.push((
            format!("POST /authorize/number/{:.40}", id),
            post_request(
                &format!("/authorize/number/{id}"),
                Some("application/x-www-form-urlencoded"),
                "",
                format!("msisdn=%2B{MSISDN}").as_bytes(),
            ),
        ));
    }
    cases.push((
        "100 KB path".into(),
        get_request(
            format!("/authorize/wait/{}", "w".repeat(100 * 1024)).as_bytes(),
            "",
        ),
    ));
    cases.push((
        "deep path".into(),
        get_request("/authorize/wait/a/b/c/d/e/f".as_bytes(), ""),
    ));
    for (name, request) in cases {
        let r = raw(&g, request).await;
        check(&mut failures, &name, r.status, None, &b.sp, false);
    }
    // The browser's long poll says "done" for a session it cannot find (the page then
    // reloads and shows the error): 200, never 5xx.
    for id in [long.as_str(), unknown.as_str()] {
        let r = raw(
            &g,
            get_request(format!("/authorize/wait/{id}/status").as_bytes(), ""),
        )
        .await;
        assert_eq!(
            r.status,
            Some(200),
            "{:?}",
            String::from_utf8_lossy(&r.body)
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["done"], true);
    }
    // Other methods on the protocol endpoints.
    for (method, path) in [
        ("PUT", "/authorize"),
        ("DELETE", "/token"),
        ("GET", "/token"),
        ("PATCH", "/userinfo"),
        ("TRACE", "/authorize"),
        ("BREW", "/healthz"),
    ] {
        let r = raw(
            &g,
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes(),
        )
        .await;
        check(
            &mut failures,
            &format!("{method} {path}"),
            r.status,
            None,
            &b.sp,
            false,
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_intact(&g, &b).await;
}

#[tokio::test]
async fn fuzzed_authorize_requests_never_get_a_5xx() {
    let (g, b) = setup().await;
    let base = Q::valid(&b.sp, MSISDN).encode().into_bytes();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    const POOL: &[u8] = b"%&=+;?#/\\ \0\x01\x7f\xff\xfe\xc3\x28aZ9~-_.\r\n\t\"<>";
    let mut failures = Vec::new();
    for i in 0..300 {
        let mut q = base.clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(7) {
                // Flip one byte to something awkward or random.
                0 | 1 => {
                    if !q.is_empty() {
                        let pos = rng.below(q.len());
                        q[pos] = if rng.below(2) == 0 {
                            POOL[rng.below(POOL.len())]
                        } else {
                            rng.next() as u8
                        };
                    }
                }
                // Truncate.
                2 => {
                    let keep = rng.below(q.len() + 1);
                    q.truncate(keep);
                }
                // Duplicate a parameter.
                3 => {
                    let parts: Vec<Vec<u8>> = q.split(|c| *c == b'&').map(<[u8]>::to_vec).collect();
                    let pick = parts[rng.below(parts.len())].clone();
                    q.push(b'&');
                    q.extend_from_slice(&pick);
                }
                // Drop a parameter.
                4 => {
                    let mut parts: Vec<Vec<u8>> =
                        q.split(|c| *c == b'&').map(<[u8]>::to_vec).collect();
                    let drop = rng.below(parts.len());
                    parts.remove(drop);
                    q = parts.join(&b'&');
                }
                // Insert a (possibly invalid) escape.
                5 => {
                    let pos = rng.below(q.len() + 1);
                    let hex = b"0123456789abcdefFGz%";
                    let esc = [b'%', hex[rng.below(hex.len())], hex[rng.below(hex.len())]];
                    q.splice(pos..pos, esc);
                }
                // Blow a value up.
                _ => {
                    let pos = rng.below(q.len() + 1);
                    let n = [10, 600, 3000, 9000][rng.below(4)];
                    let filler = POOL[rng.below(POOL.len())];
                    q.splice(pos..pos, std::iter::repeat_n(filler, n));
                }
            }
        }
        let post = i % 2 == 1;
        let request = if post {
            post_request(
                "/authorize",
                Some("application/x-www-form-urlencoded"),
                "",
                &q,
            )
        } else {
            let mut target = b"/authorize?".to_vec();
            target.extend_from_slice(&q);
            get_request(&target, "")
        };
        let r = raw(&g, request).await;
        let what = format!(
            "#{i} {} {:?}",
            if post { "POST" } else { "GET" },
            String::from_utf8_lossy(&q[..q.len().min(200)])
        );
        match r.status {
            None => failures.push(format!("{what}: no answer")),
            Some(s) if s >= 500 => failures.push(format!("{what}: {s}")),
            Some(s) if (300..400).contains(&s) => {
                // A redirect only ever goes to the registered URI or the gateway's own pages.
                let loc = r.header("location").unwrap_or_default();
                if !(loc.starts_with(&format!("{}?", b.sp.redirect_uri))
                    || loc.starts_with("/authorize/wait/")
                    || loc.starts_with("/authorize/number/"))
                {
                    failures.push(format!("{what}: {s} to {loc}"));
                }
            }
            Some(_) => {}
        }
        if i % 50 == 49 {
            let h = g
                .http()
                .get(format!("{}/healthz", g.base))
                .send()
                .await
                .unwrap();
            assert_eq!(h.status(), 200, "healthz after #{i}");
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_intact(&g, &b).await;
}

#[tokio::test]
async fn markup_in_transaction_text_is_escaped_on_the_waiting_page() {
    let (g, b) = setup().await;
    let context = "<script>alert(1)</script>";
    let binding = "\"><img src=x onerror=alert(2)>";
    let mut q = Q::valid(&b.sp, MSISDN);
    q.set("scope", "openid mc_authz")
        .set("client_name", "OnlineShopper")
        .set("context", context)
        .set("binding_message", binding);
    let resp = g.http().get(q.url(&g)).send().await.unwrap();
    let wait = location(&g.base, &resp).unwrap();
    assert!(wait.contains("/authorize/wait/"), "{wait}");
    let page = g
        .http()
        .get(&wait)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains(context), "context is not escaped");
    assert!(!html.contains(binding), "binding_message is not escaped");
    assert!(
        html.contains("&lt;script&gt;alert(1)") || html.contains("&#60;script&#62;alert(1)"),
        "the context is shown, escaped: {html}"
    );
    // The phone sees the text as sent.
    let c = g.phone(MSISDN).approve_next().await;
    assert_eq!(c.context.as_deref(), Some(context));
    assert_eq!(c.binding_message.as_deref(), Some(binding));
    let back = follow_to_redirect_uri(&g, &wait, &b.sp.redirect_uri).await;
    assert!(query_of(&back).contains_key("code"));
    assert_intact(&g, &b).await;
}
