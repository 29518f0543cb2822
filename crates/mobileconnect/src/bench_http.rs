//! The load generator's HTTP client (`mobileconnect bench`): each worker owns one HTTP/1.1
//! keep-alive connection per origin ([`LeanConn`]), a `TcpStream` with `TCP_NODELAY`, and
//! sends its requests on it one at a time, as wrk does: the request is written with one
//! `write`, the answer read into the connection's buffer and parsed with `httparse`
//! (`Content-Length` and `chunked` bodies).
//!
//! Why not a general client: the load generator runs in the gateway's process, on the same
//! cores, and its CPU is counted with the gateway's. reqwest parses a URL, checks a
//! connection out of a shared pool and clones its connector per request; hyper's connection
//! API (used here before) hands each request through a channel to the connection's state
//! machine and back through a oneshot. A worker that owns its connection and waits on it
//! needs none of that (docs/benchmarks.md, fix 25: the CPU per login before and after).

use std::borrow::Cow;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
};
use hyper::{Method, StatusCode};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bench::STEP_TIMEOUT;

/// Where a connection goes: a socket address, and the `Host` header that names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    addr: SocketAddr,
    host: HeaderValue,
}

impl Origin {
    /// A server on `addr`, named by it (`127.0.0.1:PORT`).
    pub fn at(addr: SocketAddr) -> Result<Origin, String> {
        let host = HeaderValue::from_str(&addr.to_string()).map_err(|e| format!("{addr}: {e}"))?;
        Ok(Origin { addr, host })
    }

    /// The origin of an `http://` URL, its host resolved once, here.
    pub async fn of(url: &Url) -> Result<Origin, String> {
        if url.scheme() != "http" {
            return Err(format!(
                "{url}: the load generator speaks plain http:// only"
            ));
        }
        let host = url.host_str().ok_or_else(|| format!("{url}: no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        // As reqwest names it: the port only when it is not the scheme's default.
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let host = HeaderValue::from_str(&authority).map_err(|e| format!("{url}: {e}"))?;
        Ok(Origin { addr, host })
    }
}

/// The request target of `url`: its path and query (origin-form).
pub fn target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `application/x-www-form-urlencoded`, byte for byte as reqwest's `.form()` and `.query()`
/// encode (both use `form_urlencoded`).
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `Authorization: Basic …` (client_secret_basic), as reqwest's `basic_auth` writes it.
pub fn basic(client_id: &str, secret: &str) -> Result<HeaderValue, String> {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| format!("Basic: {e}"))
}

/// `Authorization: Bearer …`.
pub fn bearer(access_token: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(&format!("Bearer {access_token}")).map_err(|e| format!("Bearer: {e}"))
}

/// A whole answer: status, headers and the body read to its end.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// One worker's keep-alive connection to one origin, opened on first use and reopened
/// when the server has closed it or a request failed on it.
pub struct LeanConn {
    origin: Origin,
    open: Option<Open>,
    /// Connections opened so far.
    opened: u64,
    /// The request being sent (kept: its capacity is reused).
    request: Vec<u8>,
}

/// An open connection and what was read from it past the last answer (nothing, unless
/// the server sent more than it was asked for).
struct Open {
    tcp: TcpStream,
    read: BytesMut,
}

/// Headers an answer may carry, at most (the gateway sends about a dozen).
const MAX_HEADERS: usize = 48;

/// What one read asks for, at least.
const READ_CHUNK: usize = 16 * 1024;

impl LeanConn {
    pub fn new(origin: Origin) -> LeanConn {
        LeanConn {
            origin,
            open: None,
            opened: 0,
            request: Vec::with_capacity(1024),
        }
    }

    /// Connections opened after the first one.
    pub fn reconnects(&self) -> u64 {
        self.opened.saturating_sub(1)
    }

    /// Opens the connection now (when it is not open), so the first request does not pay
    /// for the TCP handshake.
    pub async fn connect(&mut self) -> Result<(), String> {
        if self.open.is_none() {
            self.open = Some(self.connect_new().await?);
        }
        Ok(())
    }

    pub async fn get(&mut self, path: &str, auth: Option<&HeaderValue>) -> Result<Reply, String> {
        self.send(Method::GET, path, auth, None).await
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        auth: Option<&HeaderValue>,
        pairs: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let body = (
            "application/x-www-form-urlencoded",
            form(pairs).into_bytes(),
        );
        self.send(Method::POST, path, auth, Some(body)).await
    }

    pub async fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        self.send(Method::POST, path, None, Some(("application/json", bytes)))
            .await
    }

    /// One request and its whole answer within [`STEP_TIMEOUT`]. After any failure the
    /// connection is dropped (a request cut off mid-way leaves it unusable) and the next
    /// request opens a new one.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        auth: Option<&HeaderValue>,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Reply, String> {
        write_request(
            &mut self.request,
            &method,
            path,
            &self.origin.host,
            auth,
            body.as_ref().map(|(ct, b)| (*ct, b.as_slice())),
        )?;
        let result = match tokio::time::timeout(STEP_TIMEOUT, self.exchange()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", STEP_TIMEOUT.as_secs())),
        };
        match &result {
            Ok((_, keep_alive)) if *keep_alive => {}
            _ => self.open = None,
        }
        result.map(|(reply, _)| reply)
    }

    /// Sends `self.request` and reads the answer; also whether the connection stays open.
    async fn exchange(&mut self) -> Result<(Reply, bool), String> {
        let mut retried = false;
        loop {
            let reused = self.open.is_some();
            let mut open = match self.open.take() {
                Some(open) => open,
                None => self.connect_new().await?,
            };
            let sent = open.tcp.write_all(&self.request).await;
            let answer = match sent {
                Ok(()) => read_reply(&mut open).await,
                Err(e) => Err(Failure::Closed(e.to_string())),
            };
            match answer {
                Ok(reply) => {
                    self.open = Some(open);
                    return Ok(reply);
                }
                // A kept-alive connection the server closed before it read the request:
                // the request goes out once more on a new connection, as reqwest's pool
                // does. A request that got any answer at all is never repeated.
                Err(Failure::Closed(_)) if reused && !retried => retried = true,
                Err(Failure::Closed(e) | Failure::Broken(e)) => return Err(e),
            }
        }
    }

    async fn connect_new(&mut self) -> Result<Open, String> {
        let addr = self.origin.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY {addr}: {e}"))?;
        self.opened += 1;
        Ok(Open {
            tcp,
            read: BytesMut::with_capacity(READ_CHUNK),
        })
    }
}

/// Writes an HTTP/1.1 request into `out` (cleared first): the headers reqwest sent (`host`,
/// `accept: */*`, and `content-type` and `content-length` with a body).
fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    host: &HeaderValue,
    auth: Option<&HeaderValue>,
    body: Option<(&str, &[u8])>,
) -> Result<(), String> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("{path}: not a request target"));
    }
    out.clear();
    let mut line = |parts: &[&[u8]]| {
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"\r\n");
    };
    line(&[
        method.as_str().as_bytes(),
        b" ",
        path.as_bytes(),
        b" HTTP/1.1",
    ]);
    line(&[b"host: ", host.as_bytes()]);
    line(&[b"accept: */*"]);
    if let Some(auth) = auth {
        line(&[b"authorization: ", auth.as_bytes()]);
    }
    if let Some((content_type, bytes)) = body {
        line(&[b"content-type: ", content_type.as_bytes()]);
        line(&[b"content-length: ", bytes.len().to_string().as_bytes()]);
    }
    line(&[]);
    if let Some((_, bytes)) = body {
        out.extend_from_slice(bytes);
    }
    Ok(())
}

/// Why an exchange failed: the connection ended before any answer (`Closed`: a request on
/// a kept-alive connection may be repeated), or anything else.
enum Failure {
    Closed(String),
    Broken(String),
}

/// Reads more of the answer into the connection's buffer; `Ok(false)` at the end of the
/// stream.
async fn fill(open: &mut Open) -> Result<bool, String> {
    open.read.reserve(READ_CHUNK);
    let n = open
        .tcp
        .read_buf(&mut open.read)
        .await
        .map_err(|e| e.to_string())?;
    Ok(n > 0)
}

/// Reads one whole answer; also whether the connection may carry the next request.
async fn read_reply(open: &mut Open) -> Result<(Reply, bool), Failure> {
    let (status, headers, head_len, http11) = loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&open.read) {
            Ok(httparse::Status::Complete(len)) => {
                let status = StatusCode::from_u16(parsed.code.unwrap_or(0))
                    .map_err(|e| Failure::Broken(format!("status: {e}")))?;
                let mut headers = HeaderMap::with_capacity(parsed.headers.len());
                for h in parsed.headers.iter() {
                    let name = HeaderName::from_bytes(h.name.as_bytes())
                        .map_err(|e| Failure::Broken(format!("header name: {e}")))?;
                    let value = HeaderValue::from_bytes(h.value)
                        .map_err(|e| Failure::Broken(format!("header {name}: {e}")))?;
                    headers.append(name, value);
                }
                break (status, headers, len, parsed.version == Some(1));
            }
            Ok(httparse::Status::Partial) => {
                let before = open.read.len();
                match fill(open).await {
                    Ok(true) => {}
                    Ok(false) if before == 0 => {
                        return Err(Failure::Closed("the server closed the connection".into()));
                    }
                    Ok(false) => return Err(Failure::Broken("the answer was cut off".into())),
                    Err(e) if before == 0 => return Err(Failure::Closed(e)),
                    Err(e) => return Err(Failure::Broken(e)),
                }
            }
            Err(e) => return Err(Failure::Broken(format!("answer: {e}"))),
        }
    };
    let _ = open.read.split_to(head_len);
    let close = headers
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let chunked = headers
        .get(TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let length = match headers.get(CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| Failure::Broken("bad content-length".into()))?,
        ),
        None => None,
    };
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let broken = Failure::Broken;
    let body = if bodiless {
        Bytes::new()
    } else if chunked {
        read_chunked(open).await.map_err(broken)?
    } else if let Some(len) = length {
        while open.read.len() < len {
            if !fill(open).await.map_err(broken)? {
                return Err(Failure::Broken("the body was cut off".into()));
            }
        }
        open.read.split_to(len).freeze()
    } else {
        // No length: the body ends with the connection.
        while fill(open).await.map_err(broken)? {}
        let all = open.read.split().freeze();
        return Ok((
            Reply {
                status,
                headers,
                body: all,
            },
            false,
        ));
    };
    Ok((
        Reply {
            status,
            headers,
            body,
        },
        http11 && !close,
    ))
}

/// Reads a `chunked` body (RFC 9112 §7.1) to its last chunk and trailers.
async fn read_chunked(open: &mut Open) -> Result<Bytes, String> {
    let mut body = BytesMut::new();
    loop {
        let (start, size) = loop {
            match httparse::parse_chunk_size(&open.read) {
                Ok(httparse::Status::Complete((start, size))) => break (start, size),
                Ok(httparse::Status::Partial) => {
                    if !fill(open).await? {
                        return Err("the body was cut off".into());
                    }
                }
                Err(_) => return Err("bad chunk size".into()),
            }
        };
        let size = usize::try_from(size).map_err(|_| "chunk too large".to_owned())?;
        if size == 0 {
            let _ = open.read.split_to(start);
            // Trailers (none expected), up to the empty line.
            loop {
                if let Some(end) = open.read.windows(2).position(|w| w == b"\r\n") {
                    let _ = open.read.split_to(end + 2);
                    if end == 0 {
                        return Ok(body.freeze());
                    }
                } else if !fill(open).await? {
                    return Err("the body was cut off".into());
                }
            }
        }
        while open.read.len() < start + size + 2 {
            if !fill(open).await? {
                return Err("the body was cut off".into());
            }
        }
        let _ = open.read.split_to(start);
        body.extend_from_slice(&open.read.split_to(size));
        if &open.read[..2] != b"\r\n" {
            return Err("bad chunk end".into());
        }
        let _ = open.read.split_to(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded_as_reqwest_encodes_them() {
        assert_eq!(
            form(&[
                ("scope", "openid mc_authn"),
                ("redirect_uri", "http://127.0.0.1:8080/cb"),
                ("login_hint", "MSISDN:447701000000"),
                ("x", "a*b-c.d_e~é&="),
            ]),
            "scope=openid+mc_authn&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb\
             &login_hint=MSISDN%3A447701000000&x=a*b-c.d_e%7E%C3%A9%26%3D"
        );
        assert_eq!(form(&[]), "");
    }

    #[test]
    fn requests_are_written_with_reqwests_headers() {
        let mut out = Vec::new();
        let host = HeaderValue::from_static("127.0.0.1:8080");
        let auth = HeaderValue::from_static("Basic eDp5");
        write_request(
            &mut out,
            &Method::POST,
            "/token",
            &host,
            Some(&auth),
            Some(("application/x-www-form-urlencoded", b"grant_type=x")),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /token HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: */*\r\n\
             authorization: Basic eDp5\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: 12\r\n\r\ngrant_type=x"
        );
        write_request(&mut out, &Method::GET, "/healthz", &host, None, None).unwrap();
        assert_eq!(
            out,
            b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: */*\r\n\r\n"
        );
        for bad in ["healthz", "/a b", "/a\r\nx: y"] {
            assert!(write_request(&mut out, &Method::GET, bad, &host, None, None).is_err());
        }
    }

    /// A server on loopback that answers the connections it accepts with `answers` (one
    /// list of byte pieces per connection, written with a flush between pieces, each after
    /// one request has been read), then closes each connection.
    async fn scripted(answers: Vec<Vec<Vec<&'static [u8]>>>) -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for conn in answers {
                let (mut tcp, _) = listener.accept().await.unwrap();
                for pieces in conn {
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut b = [0u8; 1024];
                        let n = tcp.read(&mut b).await.unwrap();
                        assert!(n > 0, "the client hung up");
                        seen.extend_from_slice(&b[..n]);
                    }
                    for piece in pieces {
                        tcp.write_all(piece).await.unwrap();
                        tcp.flush().await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
            }
        });
        Origin::at(addr).unwrap()
    }

    #[tokio::test]
    async fn answers_are_read_whole_in_either_framing_on_one_connection() {
        let origin = scripted(vec![vec![
            vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: ap",
                b"plication/json\r\n\r\n5\r\n{\"a\":\r\n",
                b"2\r\n1}\r\n0\r\n\r\n",
            ],
            vec![
                b"HTTP/1.1 302 Found\r\nlocation: /x\r\ncontent-length: 3\r\n\r\nab",
                b"c",
            ],
            vec![b"HTTP/1.1 204 No Content\r\n\r\n"],
        ]])
        .await;
        let mut conn = LeanConn::new(origin);
        let first = conn.get("/one", None).await.unwrap();
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(&first.body[..], b"{\"a\":1}");
        assert_eq!(
            first.headers[hyper::header::CONTENT_TYPE],
            "application/json"
        );
        let second = conn
            .post_json("/two", &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(second.status, StatusCode::FOUND);
        assert_eq!(second.headers[hyper::header::LOCATION], "/x");
        assert_eq!(&second.body[..], b"abc");
        let third = conn.get("/three", None).await.unwrap();
        assert_eq!(third.status, StatusCode::NO_CONTENT);
        assert!(third.body.is_empty());
        assert_eq!(conn.reconnects(), 0, "one connection carried all three");
    }

    #[tokio::test]
    async fn a_request_on_a_connection_the_server_closed_goes_out_once_more() {
        let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        // The first connection answers once and closes; the second answers the repeat.
        let origin = scripted(vec![vec![vec![ok]], vec![vec![ok]]]).await;
        let mut conn = LeanConn::new(origin);
        assert_eq!(&conn.get("/a", None).await.unwrap().body[..], b"ok");
        assert_eq!(&conn.get("/b", None).await.unwrap().body[..], b"ok");
        assert_eq!(conn.reconnects(), 1);
        // Nobody is listening any more: the next failure is the request's.
        assert!(conn.get("/c", None).await.is_err());
    }

    #[tokio::test]
    async fn an_answer_cut_off_is_an_error_not_a_repeat() {
        let origin = scripted(vec![
            vec![vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]],
            vec![vec![b"HTTP/1.1 200 OK\r\ncontent-len"]],
        ])
        .await;
        let mut conn = LeanConn::new(origin);
        conn.get("/a", None).await.unwrap();
        // The first connection is closed: the request goes out on the second, whose answer
        // stops half-way.
        let err = conn.get("/b", None).await.err().unwrap();
        assert!(err.contains("cut off"), "{err}");
    }

    #[test]
    fn basic_is_base64_of_id_and_secret() {
        assert_eq!(
            basic("bench-sp", "bench-peer-secret").unwrap(),
            "Basic YmVuY2gtc3A6YmVuY2gtcGVlci1zZWNyZXQ="
        );
    }
}
