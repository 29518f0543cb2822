//! The Discovery API (digest §2): `GET` and `POST {base}/v2/discovery`.
//!
//! The handler translates; the decisions are small named functions:
//! [`collect_params`] (query, form or JSON body → one case-insensitive map),
//! [`authenticate`] (Basic auth with the application's *discovery* credentials),
//! [`check_redirect_url`] (mandatory, registered), [`DiscoveryRequest::parse`] (the
//! identification parameters) and [`identify`] (which operator, if any). Then the answer:
//! 200 with the operator's endpoints and the application's credentials there, 202 (JSON)
//! or 302 (`Accept: text/html`) to the operator-selection page, or an error of
//! [`DiscoveryError`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mc_core::msisdn::Msisdn;
use mc_store::{DiscoveryAppRecord, NumberKind, OperatorCredentialRecord};
use serde_json::{Value, json};

use crate::crypto::{SelectionSession, same, sha256_hex};
use crate::error::DiscoveryError;
use crate::ip::parse_source_ip;
use crate::state::{DiscoveryState, Operator, Snapshot};

/// The longest value of any parameter.
const MAX_PARAM: usize = 2048;
/// The longest `correlation_id` echoed.
const MAX_CORRELATION_ID: usize = 256;

/// The parameters, keys lowercased (SDKs differ in case: `Redirect_URL`, `redirect_url`).
pub type Params = HashMap<String, String>;

/// Query string (`GET`), or query plus a form or JSON body (`POST`). A parameter given
/// twice is refused: which one would win is ambiguous.
pub fn collect_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, DiscoveryError> {
    let mut params = Params::new();
    let mut put = |k: &str, v: String| -> Result<(), DiscoveryError> {
        if v.len() > MAX_PARAM {
            return Err(DiscoveryError::InvalidRequest(format!("{k} is too long")));
        }
        match params.insert(k.to_ascii_lowercase(), v) {
            None => Ok(()),
            Some(_) => Err(DiscoveryError::InvalidRequest(format!(
                "{k} is given more than once"
            ))),
        }
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        put(&k, v.into_owned())?;
    }
    if *method != Method::POST || body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-www-form-urlencoded" => {
            for (k, v) in url::form_urlencoded::parse(body) {
                put(&k, v.into_owned())?;
            }
        }
        "application/json" => {
            let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
                return Err(DiscoveryError::InvalidRequest(
                    "the body is not a JSON object".into(),
                ));
            };
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => continue,
                    _ => {
                        return Err(DiscoveryError::InvalidRequest(format!(
                            "{k} must be a string"
                        )));
                    }
                };
                put(&k, v)?;
            }
        }
        _ => {
            return Err(DiscoveryError::InvalidRequest(
                "Content-Type must be application/x-www-form-urlencoded or application/json".into(),
            ));
        }
    }
    Ok(params)
}

/// `correlation_id`, when present: printable ASCII, at most 256 characters (it is echoed).
pub fn check_correlation_id(p: &Params) -> Result<Option<String>, DiscoveryError> {
    match p.get("correlation_id") {
        None => Ok(None),
        Some(c)
            if !c.is_empty()
                && c.len() <= MAX_CORRELATION_ID
                && c.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
        {
            Ok(Some(c.clone()))
        }
        Some(_) => Err(DiscoveryError::InvalidRequest(
            "correlation_id must be 1 to 256 printable characters".into(),
        )),
    }
}

/// HTTP Basic with the application's discovery client id and secret (digest §2.2); the
/// secret is compared by its SHA-256 in constant time.
pub async fn authenticate(
    s: &DiscoveryState,
    headers: &HeaderMap,
) -> Result<DiscoveryAppRecord, DiscoveryError> {
    let (id, secret) = basic_credentials(headers).ok_or(DiscoveryError::InvalidClient)?;
    let app = s.store().get_discovery_app(&id).await.map_err(|e| {
        tracing::error!(error = %e, "store failure reading a discovery application");
        DiscoveryError::Server
    })?;
    let presented = sha256_hex(&secret);
    match app {
        Some(app) if app.enabled && same(&presented, &app.secret_hash) => Ok(app),
        _ => Err(DiscoveryError::InvalidClient),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    (!id.is_empty() && !secret.is_empty()).then(|| (id.to_owned(), secret.to_owned()))
}

/// `Redirect_URL` is mandatory and must be one the application registered, exactly:
/// the operator-selection page sends the user's browser there.
pub fn check_redirect_url(p: &Params, app: &DiscoveryAppRecord) -> Result<String, DiscoveryError> {
    let url = p
        .get("redirect_url")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| DiscoveryError::InvalidRequest("Redirect_URL is required".into()))?;
    if !app.redirect_uris.iter().any(|r| r == url) {
        return Err(DiscoveryError::InvalidRequest(
            "Redirect_URL is not registered for this application".into(),
        ));
    }
    Ok(url.clone())
}

/// How the request identifies the subscriber's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryRequest {
    pub msisdn: Option<Msisdn>,
    pub selected: Option<(String, String)>,
    pub identified: Option<(String, String)>,
    pub source_ip: Option<IpAddr>,
    pub manually_select: bool,
}

fn flag(p: &Params, name: &str) -> Option<bool> {
    p.get(name)
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn mcc_mnc(
    p: &Params,
    mcc_name: &str,
    mnc_name: &str,
) -> Result<Option<(String, String)>, DiscoveryError> {
    let mcc = p
        .get(&mcc_name.to_ascii_lowercase())
        .filter(|v| !v.is_empty());
    let mnc = p
        .get(&mnc_name.to_ascii_lowercase())
        .filter(|v| !v.is_empty());
    match (mcc, mnc) {
        (None, None) => Ok(None),
        (Some(mcc), Some(mnc)) => {
            let digits = |s: &str, lens: &[usize]| {
                lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
            };
            if !digits(mcc, &[3]) {
                return Err(DiscoveryError::InvalidRequest(format!(
                    "{mcc_name} must be 3 digits"
                )));
            }
            if !digits(mnc, &[2, 3]) {
                return Err(DiscoveryError::InvalidRequest(format!(
                    "{mnc_name} must be 2 or 3 digits"
                )));
            }
            Ok(Some((mcc.clone(), mnc.clone())))
        }
        _ => Err(DiscoveryError::InvalidRequest(format!(
            "{mcc_name} and {mnc_name} go together"
        ))),
    }
}

impl DiscoveryRequest {
    /// The identification parameters. `MSISDN` only in a `POST` body or JSON (digest
    /// §2.3: it must not travel in URLs, which land in logs); `X-Source-IP` is ignored
    /// when `Using-Mobile-Data` is `0`.
    pub fn parse(
        p: &Params,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Self, DiscoveryError> {
        let msisdn = match p.get("msisdn").filter(|v| !v.is_empty()) {
            None => None,
            Some(raw) => {
                let in_query = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .any(|(k, _)| k.eq_ignore_ascii_case("msisdn"));
                if *method != Method::POST || in_query {
                    return Err(DiscoveryError::InvalidRequest(
                        "MSISDN must be sent in a POST body, not in the URL".into(),
                    ));
                }
                Some(Msisdn::parse(raw.trim()).ok_or_else(|| {
                    DiscoveryError::InvalidRequest(
                        "MSISDN must be an international number: 7 to 15 digits, optional +".into(),
                    )
                })?)
            }
        };
        let selected = mcc_mnc(p, "Selected-MCC", "Selected-MNC")?;
        let identified = mcc_mnc(p, "Identified-MCC", "Identified-MNC")?;
        let using_mobile_data = flag(p, "using-mobile-data").unwrap_or(true);
        let source_ip = match headers.get("x-source-ip") {
            None => None,
            Some(v) => {
                let ip = v.to_str().ok().and_then(parse_source_ip).ok_or_else(|| {
                    DiscoveryError::InvalidRequest("X-Source-IP is not an IP address".into())
                })?;
                using_mobile_data.then_some(ip)
            }
        };
        Ok(DiscoveryRequest {
            msisdn,
            selected,
            identified,
            source_ip,
            manually_select: flag(p, "manually-select").unwrap_or(false),
        })
    }
}

/// The outcome of identification.
#[derive(Debug)]
pub enum Identified {
    /// The serving operator, and the MSISDN when the request gave one.
    Operator(Arc<Operator>, Option<Msisdn>),
    /// Nothing identifies the operator: the user picks it.
    Select,
}

/// Which operator serves the request, in order of authority: the MSISDN (number ranges
/// and ported numbers), the operator the user selected, the one the device's SIM names,
/// the mobile-data IP range; otherwise operator selection. An MSISDN or MCC/MNC that
/// names no enabled operator is `OperatorNotFound`; an IP outside every range leads to
/// operator selection.
pub fn identify(snap: &Snapshot, r: &DiscoveryRequest) -> Result<Identified, DiscoveryError> {
    if r.manually_select {
        return Ok(Identified::Select);
    }
    if let Some(m) = &r.msisdn {
        let (op, _kind): (&Arc<Operator>, NumberKind) =
            snap.by_msisdn(m).ok_or(DiscoveryError::OperatorNotFound)?;
        return Ok(Identified::Operator(op.clone(), Some(m.clone())));
    }
    if let Some((mcc, mnc)) = r.selected.as_ref().or(r.identified.as_ref()) {
        let op = snap
            .by_mcc_mnc(mcc, mnc)
            .ok_or(DiscoveryError::OperatorNotFound)?;
        return Ok(Identified::Operator(op.clone(), None));
    }
    if let Some(op) = r.source_ip.and_then(|ip| snap.by_ip(ip)) {
        return Ok(Identified::Operator(op.clone(), None));
    }
    Ok(Identified::Select)
}

/// Every link relation of digest §2.5 the operator has (`operatorSelection` excepted):
/// `tokenrefresh` defaults to `token`, `openid-configuration` to the issuer's well-known
/// URL, `applicationShortName` is the application's name at the operator.
pub fn links(op: &Operator, short_name: &str) -> Vec<Value> {
    let l = &op.record.links;
    let mut out = Vec::new();
    for rel in [
        "authorization",
        "token",
        "userinfo",
        "premiuminfo",
        "jwks",
        "tokenrevoke",
        "tokenrefresh",
        "openid-configuration",
        "issuer",
        "scope",
    ] {
        let href = l.get(rel).cloned().or_else(|| match rel {
            "tokenrefresh" => l.get("token").cloned(),
            "openid-configuration" => l.get("issuer").map(|i| {
                format!(
                    "{}/.well-known/openid-configuration",
                    i.trim_end_matches('/')
                )
            }),
            _ => None,
        });
        if let Some(href) = href {
            out.push(json!({"rel": rel, "href": href}));
        }
    }
    out.push(json!({"rel": "applicationShortName", "href": short_name}));
    out
}

/// The 200 body (digest §2.4); `ttl` is the absolute expiry in epoch milliseconds.
pub fn success_body(
    app: &DiscoveryAppRecord,
    op: &Operator,
    cred: &OperatorCredentialRecord,
    client_secret: &str,
    subscriber_id: Option<&str>,
    correlation_id: Option<&str>,
    ttl: u64,
) -> Value {
    let client_name = cred.client_name.as_deref().unwrap_or(&app.short_name);
    let mut response = json!({
        "client_id": cred.client_id,
        "client_secret": client_secret,
        "client_name": client_name,
        "serving_operator": op.record.id,
        "country": op.record.country,
        "currency": op.record.currency,
        "apis": {"operatorid": {"link": links(op, client_name)}},
    });
    let mut body = json!({
        "ttl": ttl,
    });
    if let Some(sub) = subscriber_id {
        // Top level (what the SDKs read) and inside `response` (J's older fixture).
        body["subscriber_id"] = json!(sub);
        response["subscriber_id"] = json!(sub);
    }
    body["response"] = response;
    if let Some(c) = correlation_id {
        body["correlation_id"] = json!(c);
    }
    body
}

/// The application's credentials at `op`, opened.
pub async fn credentials_at(
    s: &DiscoveryState,
    app: &DiscoveryAppRecord,
    op: &Operator,
) -> Result<(OperatorCredentialRecord, String), DiscoveryError> {
    let cred = s
        .store()
        .get_operator_credential(&app.client_id, &op.record.id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "store failure reading operator credentials");
            DiscoveryError::Server
        })?
        .ok_or(DiscoveryError::NotEnabledAtOperator)?;
    let secret = s
        .secrets()
        .open(
            &credential_label(&app.client_id, &op.record.id),
            &cred.client_secret_sealed,
        )
        .map_err(|e| {
            tracing::error!(error = %e, operator = %op.record.id, "cannot open a client secret");
            DiscoveryError::Server
        })?;
    Ok((cred, secret))
}

/// The associated data a per-operator client secret is sealed under.
pub fn credential_label(app_id: &str, operator_id: &str) -> String {
    format!("discovery-credential/{app_id}/{operator_id}")
}

/// `subscriber_id` for `msisdn` at `op`, when the operator has a key.
pub fn subscriber_id(op: &Operator, msisdn: &Msisdn) -> Result<Option<String>, DiscoveryError> {
    let Some(key) = &op.key else {
        tracing::warn!(operator = %op.record.id, "no encryption key: answer without subscriber_id");
        return Ok(None);
    };
    key.encrypt_msisdn(msisdn).map(Some).map_err(|e| {
        tracing::error!(error = %e, "subscriber_id encryption failed");
        DiscoveryError::Server
    })
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    accept.contains("text/html") && !accept.contains("application/json")
}

/// `GET|POST {base}/v2/discovery`.
pub async fn discovery(
    State(s): State<DiscoveryState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = match collect_params(&method, query.as_deref(), &headers, &body) {
        Ok(p) => p,
        Err(e) => return e.reply(None),
    };
    let correlation_id = match check_correlation_id(&params) {
        Ok(c) => c,
        Err(e) => return e.reply(None),
    };
    let cid = correlation_id.as_deref();
    match answer(&s, &method, query.as_deref(), &headers, &params, cid).await {
        Ok(r) => r,
        Err(e) => e.reply(cid),
    }
}

async fn answer(
    s: &DiscoveryState,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    params: &Params,
    correlation_id: Option<&str>,
) -> Result<Response, DiscoveryError> {
    let app = authenticate(s, headers).await?;
    let redirect_url = check_redirect_url(params, &app)?;
    let request = DiscoveryRequest::parse(params, method, query, headers)?;
    let snap = s.snapshot();
    match identify(&snap, &request)? {
        Identified::Operator(op, msisdn) => {
            let (cred, secret) = credentials_at(s, &app, &op).await?;
            let sub = match &msisdn {
                Some(m) => subscriber_id(&op, m)?,
                None => None,
            };
            if let Some(m) = &msisdn {
                tracing::debug!(msisdn = %m, operator = %op.record.id, "discovered");
            }
            let body = success_body(
                &app,
                &op,
                &cred,
                &secret,
                sub.as_deref(),
                correlation_id,
                now_ms() + s.config().ttl_secs * 1000,
            );
            Ok((
                StatusCode::OK,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(body),
            )
                .into_response())
        }
        Identified::Select => {
            let href = selection_url(s, &app.client_id, &redirect_url, correlation_id)?;
            if wants_html(headers) {
                return Ok((StatusCode::FOUND, [(header::LOCATION, href)]).into_response());
            }
            let mut body = json!({"links": [{"rel": "operatorSelection", "href": href}]});
            if let Some(c) = correlation_id {
                body["correlation_id"] = json!(c);
            }
            Ok((
                StatusCode::ACCEPTED,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(body),
            )
                .into_response())
        }
    }
}

/// The operator-selection page's URL with a signed session for this application.
pub fn selection_url(
    s: &DiscoveryState,
    app_id: &str,
    redirect_url: &str,
    correlation_id: Option<&str>,
) -> Result<String, DiscoveryError> {
    let session = SelectionSession {
        app: app_id.to_owned(),
        redirect_url: redirect_url.to_owned(),
        correlation_id: correlation_id.map(str::to_owned),
        exp: (now_ms() / 1000) as i64 + s.config().selection_ttl_secs,
    };
    let token = s.secrets().sign_session(&session).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a selection session");
        DiscoveryError::Server
    })?;
    Ok(format!(
        "{}/v2/discovery/users/operator-selection?session_id={token}",
        s.config().base()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn form_headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
        h
    }

    #[test]
    fn params_from_query_form_and_json() {
        let h = form_headers("application/x-www-form-urlencoded");
        let p = collect_params(
            &Method::POST,
            Some("Redirect_URL=https%3A%2F%2Fa%2Fcb"),
            &h,
            b"MSISDN=%2B447700900301",
        )
        .unwrap();
        assert_eq!(p["redirect_url"], "https://a/cb");
        assert_eq!(p["msisdn"], "+447700900301");
        let h = form_headers("application/json; charset=utf-8");
        let p = collect_params(
            &Method::POST,
            None,
            &h,
            br#"{"MSISDN": 447700900301, "Redirect_URL": "https://a/cb", "x": null}"#,
        )
        .unwrap();
        assert_eq!(p["msisdn"], "447700900301");
        // A GET ignores any body.
        let p = collect_params(&Method::GET, Some("a=1"), &h, b"{").unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn params_refuse_duplicates_bad_json_and_other_types() {
        let h = form_headers("application/x-www-form-urlencoded");
        assert!(collect_params(&Method::GET, Some("a=1&A=2"), &h, b"").is_err());
        assert!(collect_params(&Method::POST, Some("msisdn=1"), &h, b"MSISDN=2").is_err());
        let j = form_headers("application/json");
        assert!(collect_params(&Method::POST, None, &j, b"[1]").is_err());
        assert!(collect_params(&Method::POST, None, &j, br#"{"a":{"b":1}}"#).is_err());
        let x = form_headers("text/xml");
        assert!(collect_params(&Method::POST, None, &x, b"<a/>").is_err());
        let long = format!("a={}", "x".repeat(3000));
        assert!(collect_params(&Method::GET, Some(&long), &h, b"").is_err());
    }

    #[test]
    fn identification_parameters() {
        let h = HeaderMap::new();
        let p = |pairs: &[(&str, &str)]| -> Params {
            pairs
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect()
        };
        let r = DiscoveryRequest::parse(
            &p(&[("Selected-MCC", "234"), ("Selected-MNC", "15")]),
            &Method::GET,
            None,
            &h,
        )
        .unwrap();
        assert_eq!(r.selected, Some(("234".into(), "15".into())));
        for bad in [
            vec![("Selected-MCC", "234")],
            vec![("Identified-MCC", "23"), ("Identified-MNC", "15")],
            vec![("Identified-MCC", "234"), ("Identified-MNC", "1")],
            vec![("Identified-MCC", "234"), ("Identified-MNC", "1a")],
        ] {
            assert!(
                DiscoveryRequest::parse(&p(&bad), &Method::GET, None, &h).is_err(),
                "{bad:?}"
            );
        }
        // MSISDN: POST body only, valid digits only.
        let m = p(&[("MSISDN", "+447700900301")]);
        assert!(DiscoveryRequest::parse(&m, &Method::POST, None, &h).is_ok());
        assert!(DiscoveryRequest::parse(&m, &Method::GET, None, &h).is_err());
        assert!(
            DiscoveryRequest::parse(&m, &Method::POST, Some("MSISDN=447700900301"), &h).is_err()
        );
        let bad = p(&[("MSISDN", "07700 900301")]);
        assert!(DiscoveryRequest::parse(&bad, &Method::POST, None, &h).is_err());
        // X-Source-IP, unless the device says it is not on mobile data.
        let mut h = HeaderMap::new();
        h.insert("x-source-ip", "10.0.0.1".parse().unwrap());
        let r = DiscoveryRequest::parse(&p(&[]), &Method::GET, None, &h).unwrap();
        assert_eq!(r.source_ip, "10.0.0.1".parse().ok());
        let r = DiscoveryRequest::parse(&p(&[("Using-Mobile-Data", "0")]), &Method::GET, None, &h)
            .unwrap();
        assert_eq!(r.source_ip, None);
        h.insert("x-source-ip", "nope".parse().unwrap());
        assert!(DiscoveryRequest::parse(&p(&[]), &Method::GET, None, &h).is_err());
    }

    #[test]
    fn basic_credentials_forms() {
        let mut h = HeaderMap::new();
        let v = format!("basic {}", STANDARD.encode("id:se:cret"));
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        assert_eq!(
            basic_credentials(&h),
            Some(("id".to_string(), "se:cret".to_string()))
        );
        for bad in ["Bearer x", "Basic !!!", "Basic aWQ="] {
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert_eq!(basic_credentials(&h), None, "{bad}");
        }
    }

    #[test]
    fn correlation_ids() {
        let mut p = Params::new();
        assert_eq!(check_correlation_id(&p).unwrap(), None);
        p.insert("correlation_id".into(), "abc-123".into());
        assert_eq!(
            check_correlation_id(&p).unwrap().as_deref(),
            Some("abc-123")
        );
        p.insert("correlation_id".into(), "a\nb".into());
        assert!(check_correlation_id(&p).is_err());
        p.insert("correlation_id".into(), "x".repeat(257));
        assert!(check_correlation_id(&p).is_err());
    }
}
