//! The sandbox's virtual operators. The first ("Sandbox Operator", `901_01`) is the gateway
//! the sandbox always ran: its issuer is the sandbox's base URL, its store the configured
//! database. The others are whole gateways of their own in the same process: their own
//! issuer under a path of the same host (`/operators/<id>`), their own SQLite file under the
//! data folder (so their own signing keys, subscribers and registrations: nothing is shared
//! but the process), their own number ranges at Discovery. Northstar serves one number
//! ported in from Bluewave's range, so Discovery's ported-number override shows.
//!
//! Every subscriber's virtual phone stays at `/phone/<msisdn>`: [`phone_dispatch`] hands a
//! request for another operator's number to that operator's phone API.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use mc_core::msisdn::Msisdn;
use mc_gateway::config::GatewayConfig;
use mc_gateway::keys::{Kek, KeyRing};
use mc_gateway::state::{AppState, now};
use mc_store::DynStore;
use tower::ServiceExt;

use crate::seed::{OperatorInfo, SandboxInfo, SubscriberInfo};

/// One virtual operator's fixed description.
#[derive(Debug)]
pub struct OperatorDef {
    /// Discovery's operator id (`serving_operator`), also the issuer path's last segment.
    pub id: &'static str,
    pub name: &'static str,
    pub mcc: &'static str,
    pub mnc: &'static str,
    pub country: &'static str,
    pub currency: &'static str,
    /// Number-range prefixes (international digits).
    pub ranges: &'static [u64],
    /// Whole numbers ported in from another operator's range.
    pub ported_in: &'static [u64],
    /// Test subscribers: number, PIN, status.
    pub subscribers: &'static [(&'static str, Option<&'static str>, &'static str)],
}

/// The operators besides the first (whose data lives in `seed.rs` and `discovery.rs`).
pub const EXTRA_OPERATORS: &[OperatorDef] = &[
    OperatorDef {
        id: "bluewave",
        name: "Bluewave Mobile",
        mcc: "901",
        mnc: "02",
        country: "United Kingdom",
        currency: "GBP",
        ranges: &[447_700_901],
        ported_in: &[],
        subscribers: &[
            ("447700901301", None, "active"),
            ("447700901302", Some("2468"), "active"),
        ],
    },
    OperatorDef {
        id: "northstar",
        name: "Northstar Telecom",
        mcc: "901",
        mnc: "03",
        country: "United Kingdom",
        currency: "GBP",
        ranges: &[447_700_902],
        // In Bluewave's range, served by Northstar since it was ported.
        ported_in: &[PORTED_NUMBER],
        subscribers: &[
            ("447700902301", None, "active"),
            ("447700902302", Some("1357"), "active"),
            ("447700901555", None, "active"),
        ],
    },
];

/// The ported test number: in Bluewave's range, served by Northstar.
pub const PORTED_NUMBER: u64 = 447_700_901_555;

/// The issuer path of an extra operator.
pub fn issuer_path(def: &OperatorDef) -> String {
    format!("/operators/{}", def.id)
}

/// `scheme://host[:port]` of a URL (the URL itself when it does not parse).
pub fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.trim_end_matches('/').to_owned(),
    }
}

/// Index into [`EXTRA_OPERATORS`] of the operator serving `msisdn` (digits), the same
/// answer Discovery gives: a ported number first, then the longest range prefix. `None`:
/// the first operator's (or nobody's).
pub fn extra_operator_of(msisdn: &str) -> Option<usize> {
    let n: u64 = msisdn.parse().ok()?;
    if let Some(i) = EXTRA_OPERATORS
        .iter()
        .position(|d| d.ported_in.contains(&n))
    {
        return Some(i);
    }
    let digits = msisdn.len();
    let mut best: Option<(usize, usize)> = None;
    for (i, d) in EXTRA_OPERATORS.iter().enumerate() {
        for r in d.ranges {
            let len = r.to_string().len();
            if len <= digits && msisdn.starts_with(&r.to_string()) && best.is_none_or(|b| len > b.1)
            {
                best = Some((i, len));
            }
        }
    }
    best.map(|b| b.0)
}

/// A running extra operator.
#[derive(Clone)]
pub struct VirtualOperator {
    pub def: &'static OperatorDef,
    pub state: AppState,
    /// The demo SP's client secret at this operator.
    pub client_secret: String,
}

/// Opens (creating on first start) every extra operator: its SQLite file
/// `<data>/operator-<id>.db`, its keys (sealed with the sandbox's key-encryption key), its
/// gateway configured like the first operator's but for the issuer, the demo SP's
/// registration and the test subscribers. Appends them to `info` (operators, subscribers).
pub async fn open_extra(
    data: &Path,
    kek: &Kek,
    first: &GatewayConfig,
    previous: Option<&SandboxInfo>,
    info: &mut SandboxInfo,
) -> Result<Vec<VirtualOperator>, String> {
    let origin = origin(first.base_url());
    let redirect_uris = crate::seed::demo_redirect_uris(first.base_url());
    let mut out = Vec::new();
    for def in EXTRA_OPERATORS {
        let path = data.join(format!("operator-{}.db", def.id));
        let store: DynStore = Arc::new(
            mc_store_sqlite::SqliteStore::open(&path)
                .await
                .map_err(|e| format!("operator {}: {}: {e}", def.id, path.display()))?,
        );
        let keys = KeyRing::load_or_create(&*store, kek, now())
            .await
            .map_err(|e| format!("operator {}: keys: {e}", def.id))?;
        let mut config = first.clone();
        config.issuer = format!("{origin}{}", issuer_path(def));
        config
            .validate()
            .map_err(|e| format!("operator {}: {e}", def.id))?;
        let state = AppState::new(store, config, keys);
        let known = previous
            .and_then(|p| p.operators.iter().find(|o| o.id == def.id))
            .and_then(|o| o.client_secret.clone());
        let client_secret = crate::seed::seed_demo_client(
            &state.store,
            &redirect_uris,
            &format!("{origin}/demo-sp/jwks.json"),
            known,
        )
        .await
        .map_err(|e| format!("operator {}: {e}", def.id))?;
        for (msisdn, pin, status) in def.subscribers {
            crate::seed::seed_subscriber(&state.store, msisdn, *pin, status).await?;
            info.subscribers.push(SubscriberInfo {
                msisdn: format!("+{msisdn}"),
                pin: pin.map(String::from),
                status: (*status).into(),
                capabilities: vec!["app_push".into()],
                phone_url: format!("{origin}/phone/{msisdn}"),
                operator: Some(def.id.into()),
            });
        }
        let issuer = state.config.base_url().to_owned();
        info.operators.push(OperatorInfo {
            name: def.name.into(),
            metadata_url: format!("{issuer}/.well-known/openid-configuration"),
            issuer,
            id: def.id.into(),
            mcc_mnc: format!("{}_{}", def.mcc, def.mnc),
            client_secret: Some(client_secret.clone()),
        });
        out.push(VirtualOperator {
            def,
            state,
            client_secret,
        });
    }
    Ok(out)
}

/// The gateway routes of every extra operator, each under its issuer's path with its own
/// state.
pub fn routes(extra: &[VirtualOperator]) -> Router {
    let mut r = Router::new();
    for op in extra {
        r = r.merge(mc_gateway::routes(&op.state).with_state(op.state.clone()));
    }
    r
}

/// The phone APIs of the extra operators, indexed like [`EXTRA_OPERATORS`].
#[derive(Clone)]
pub struct Phones(Arc<Vec<Router>>);

impl Phones {
    pub fn new(extra: &[VirtualOperator]) -> Phones {
        Phones(Arc::new(
            extra
                .iter()
                .map(|op| crate::phone::router().with_state(op.state.clone()))
                .collect(),
        ))
    }
}

/// Middleware: `/phone/<msisdn>…` of a number another operator serves goes to that
/// operator's phone API; everything else passes through (the first operator's phones).
pub async fn phone_dispatch(State(phones): State<Phones>, req: Request, next: Next) -> Response {
    let target = req
        .uri()
        .path()
        .strip_prefix("/phone/")
        .and_then(|rest| rest.split('/').next())
        .and_then(Msisdn::parse)
        .and_then(|m| extra_operator_of(m.as_str()));
    match target.and_then(|i| phones.0.get(i).cloned()) {
        // A fresh request: the outer router's path parameters (extensions) would clash
        // with the inner router's.
        Some(router) => match router.oneshot(fresh(req)).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        },
        None => next.run(req).await,
    }
}

fn fresh(req: Request) -> Request {
    let (parts, body) = req.into_parts();
    let mut out = Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = parts.uri;
    *out.version_mut() = parts.version;
    *out.headers_mut() = parts.headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_map_to_their_operator() {
        assert_eq!(extra_operator_of("447700900301"), None);
        assert_eq!(extra_operator_of("447700901301"), Some(0));
        assert_eq!(extra_operator_of("447700902302"), Some(1));
        assert_eq!(extra_operator_of("447700901555"), Some(1), "ported");
        assert_eq!(extra_operator_of("not a number"), None);
    }

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(origin("http://127.0.0.1:8080/mc"), "http://127.0.0.1:8080");
        assert_eq!(origin("https://op.example"), "https://op.example");
    }
}
