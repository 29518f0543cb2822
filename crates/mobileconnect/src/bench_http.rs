//! The load generator's HTTP client (`mobileconnect bench`): each worker owns one HTTP/1.1
//! keep-alive connection per origin ([`LeanConn`]), made with hyper's connection API
//! (`hyper::client::conn::http1`) over a `TcpStream` with `TCP_NODELAY`, and sends its
//! requests on it one at a time, as wrk does. The worker drives the connection's reads and
//! writes itself while it waits on it (no connection task: measured against one, 6–8 %
//! less CPU per `GET /healthz` and 8–13 % per `client_credentials` request).
//!
//! Why not the shared `reqwest::Client`: the load generator runs in the gateway's process, on
//! the same cores, and its CPU is counted with the gateway's. Per request reqwest parses a
//! URL, checks a connection out of its shared pool (a mutex and a map) and clones its
//! connector; a worker that owns its connection needs none of that.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpStream;

use crate::bench::STEP_TIMEOUT;

/// Where a connection goes: a socket address, and the `Host` header that names it (hyper's
/// connection API sends none of its own).
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
}

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// An open connection: where requests go in, and its reads and writes, which the worker
/// drives itself while it waits on the connection (no task of its own, so no hand-off
/// between two tasks for each request).
struct Open {
    sender: SendRequest<Full<Bytes>>,
    conn: Pin<Box<Connection>>,
}

/// `fut`, while driving `conn`; `Err` when the connection ends first.
async fn driving<T>(
    conn: &mut Pin<Box<Connection>>,
    fut: impl Future<Output = T>,
) -> Result<T, String> {
    tokio::pin!(fut);
    tokio::select! {
        biased;
        out = &mut fut => Ok(out),
        ended = conn.as_mut() => Err(match ended {
            Ok(()) => "the server closed the connection".to_owned(),
            Err(e) => e.to_string(),
        }),
    }
}

impl LeanConn {
    pub fn new(origin: Origin) -> LeanConn {
        LeanConn {
            origin,
            open: None,
            opened: 0,
        }
    }

    /// Connections opened after the first one.
    pub fn reconnects(&self) -> u64 {
        self.opened.saturating_sub(1)
    }

    /// Opens the connection now (when it is not open), so the first request does not pay
    /// for the TCP handshake.
    pub async fn connect(&mut self) -> Result<(), String> {
        let open = self.ready().await?;
        self.open = Some(open);
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
        let uri: Uri = path.parse().map_err(|e| format!("{path}: {e}"))?;
        let (content_type, bytes) = body.unzip();
        let mut req = Request::new(Full::new(Bytes::from(bytes.unwrap_or_default())));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.insert(HOST, self.origin.host.clone());
        // reqwest's default; kept so the requests are the same as before.
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let result = match tokio::time::timeout(STEP_TIMEOUT, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", STEP_TIMEOUT.as_secs())),
        };
        if result.is_err() {
            self.open = None;
        }
        result
    }

    async fn exchange(&mut self, mut req: Request<Full<Bytes>>) -> Result<Reply, String> {
        let mut retried = false;
        loop {
            let Open {
                mut sender,
                mut conn,
            } = self.ready().await?;
            let send = sender.try_send_request(req);
            tokio::pin!(send);
            let answered = tokio::select! {
                biased;
                sent = &mut send => Some(sent),
                _ = conn.as_mut() => None,
            };
            let sent = match answered {
                Some(sent) => sent,
                None => {
                    // The connection is over: dropping it hands back a request it never
                    // took.
                    drop(conn);
                    match send.await {
                        Ok(_) => return Err("the server closed the connection".into()),
                        Err(e) => {
                            req = once_more(e, &mut retried)?;
                            continue;
                        }
                    }
                }
            };
            match sent {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = driving(&mut conn, body.collect())
                        .await?
                        .map_err(|e| e.to_string())?;
                    self.open = Some(Open { sender, conn });
                    return Ok(Reply {
                        status: parts.status,
                        headers: parts.headers,
                        body: body.to_bytes(),
                    });
                }
                Err(e) => req = once_more(e, &mut retried)?,
            }
        }
    }

    /// The open connection, taken out, ready for a request; a new one when there is none
    /// or the server has closed it.
    async fn ready(&mut self) -> Result<Open, String> {
        if let Some(mut open) = self.open.take() {
            let Open { sender, conn } = &mut open;
            if matches!(driving(conn, sender.ready()).await, Ok(Ok(()))) {
                return Ok(open);
            }
        }
        self.connect_new().await
    }

    async fn connect_new(&mut self) -> Result<Open, String> {
        let addr = self.origin.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY {addr}: {e}"))?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake {addr}: {e}"))?;
        self.opened += 1;
        Ok(Open {
            sender,
            conn: Box::pin(conn),
        })
    }
}

/// A request that was not written at all (the server closed the connection as it was
/// taken) goes out once more on a new connection, as reqwest's pool does. A request that
/// reached the wire is never repeated: its failure is the iteration's.
fn once_more(
    mut e: hyper::client::conn::TrySendError<Request<Full<Bytes>>>,
    retried: &mut bool,
) -> Result<Request<Full<Bytes>>, String> {
    match e.take_message() {
        Some(again) if !*retried => {
            *retried = true;
            Ok(again)
        }
        _ => Err(e.into_error().to_string()),
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
    fn basic_is_base64_of_id_and_secret() {
        assert_eq!(
            basic("bench-sp", "bench-peer-secret").unwrap(),
            "Basic YmVuY2gtc3A6YmVuY2gtcGVlci1zZWNyZXQ="
        );
    }
}
