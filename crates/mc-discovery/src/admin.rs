//! `{base}/admin/v1`: managing Discovery over REST, bearer-token authenticated (the token's
//! SHA-256 is configured as `admin_token_sha256`; no admin routes without it).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /status` | counts, generation, what the in-memory index holds |
//! | `GET, POST /operators`; `GET, PUT, DELETE /operators/{id}` | operators |
//! | `GET, POST /apps`; `GET, PUT, DELETE /apps/{id}`; `POST /apps/{id}/secret` | SP registrations |
//! | `GET /apps/{id}/credentials`; `PUT, DELETE /apps/{id}/credentials/{operator}` | per-operator credentials |
//! | `POST /numbers/import?mode=merge\|replace` (CSV body) | bulk import (see [`crate::import`]) |
//! | `GET /numbers/lookup/{msisdn}` | which operator serves a number, and why |
//! | `PUT, DELETE /numbers/{range\|ported}/{number}` | one entry |
//! | `GET, POST /ip-ranges`; `DELETE /ip-ranges?cidr=…` | mobile-data IP ranges |
//!
//! Every write reloads the in-memory snapshot before answering, so the next lookup sees it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use mc_store::NumberKind;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::crypto::{same, sha256_hex};
use crate::import::{ImportError, ImportMode, import_file};
use crate::registry::{self, AppSpec, CredentialSpec, OperatorSpec, RegistryError};
use crate::state::DiscoveryState;

/// The largest CSV upload (a national ported-number file of ~10 M lines is ~250 MB).
pub const MAX_IMPORT_BYTES: u64 = 2 << 30;

pub fn router(state: &DiscoveryState) -> Router<DiscoveryState> {
    Router::new()
        .route("/admin/v1/status", get(status))
        .route(
            "/admin/v1/operators",
            get(list_operators).post(create_operator),
        )
        .route(
            "/admin/v1/operators/{id}",
            get(get_operator)
                .put(update_operator)
                .delete(delete_operator),
        )
        .route("/admin/v1/apps", get(list_apps).post(create_app))
        .route(
            "/admin/v1/apps/{id}",
            get(get_app).put(update_app).delete(delete_app),
        )
        .route("/admin/v1/apps/{id}/secret", post(rotate_secret))
        .route("/admin/v1/apps/{id}/credentials", get(list_credentials))
        .route(
            "/admin/v1/apps/{id}/credentials/{operator}",
            put(put_credential).delete(delete_credential),
        )
        .route("/admin/v1/numbers/import", post(import))
        .route("/admin/v1/numbers/lookup/{msisdn}", get(lookup))
        .route(
            "/admin/v1/numbers/{kind}/{number}",
            put(put_number).delete(delete_number),
        )
        .route(
            "/admin/v1/ip-ranges",
            get(list_ip_ranges)
                .post(put_ip_range)
                .delete(delete_ip_range),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin,
        ))
}

async fn require_admin(
    State(s): State<DiscoveryState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if authorized(&s, req.headers()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "invalid_token"})),
        )
            .into_response()
    }
}

fn authorized(s: &DiscoveryState, h: &HeaderMap) -> bool {
    let expected = s.config().admin_token_sha256.as_deref().unwrap_or_default();
    let presented = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| sha256_hex(t.trim()))
        .unwrap_or_default();
    !expected.is_empty() && same(&presented, expected)
}

/// An admin failure on the wire.
pub struct AdminError(RegistryError);

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        AdminError(e)
    }
}

impl From<mc_store::StoreError> for AdminError {
    fn from(e: mc_store::StoreError) -> Self {
        AdminError(e.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, error) = match &self.0 {
            RegistryError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            RegistryError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            RegistryError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            RegistryError::Store(e) => {
                tracing::error!(error = %e, "store failure in the discovery admin API");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
        };
        let description = match &self.0 {
            RegistryError::Store(_) => "the store failed".to_owned(),
            other => other.to_string(),
        };
        (
            status,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    }
}

type Reply = Result<Response, AdminError>;

/// JSON bodies with a clear 400.
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AdminError(RegistryError::Invalid(format!("body: {e}"))))
}

/// Reloads after a write; a failed reload is logged (the refresher retries).
async fn reloaded(s: &DiscoveryState) {
    if let Err(e) = s.reload().await {
        tracing::warn!(error = %e, "discovery reload after an admin write failed");
    }
}

fn ok(v: Value) -> Reply {
    Ok(Json(v).into_response())
}

fn created(v: Value) -> Reply {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

fn no_content() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn status(State(s): State<DiscoveryState>) -> Reply {
    let store = s.store();
    let g = store.discovery_generation().await?;
    let snap = s.snapshot();
    ok(json!({
        "generation": g.all,
        "numbers_generation": g.numbers,
        "stored": {
            "operators": store.list_operators().await?.len(),
            "ranges": store.count_numbers(NumberKind::Range).await?,
            "ported": store.count_numbers(NumberKind::Ported).await?,
            "ip_ranges": store.list_ip_ranges().await?.len(),
        },
        "loaded": {
            "generation": snap.generation.all,
            "operators": snap.operators().len(),
            "ranges": snap.numbers().ranges_len(),
            "ported": snap.numbers().ported_len(),
            "ip_ranges": snap.ip_ranges(),
            "index_bytes": snap.numbers().heap_bytes(),
        },
    }))
}

async fn list_operators(State(s): State<DiscoveryState>) -> Reply {
    let all = s.store().list_operators().await?;
    ok(json!({"operators": all.iter().map(registry::operator_view).collect::<Vec<_>>()}))
}

async fn create_operator(State(s): State<DiscoveryState>, b: axum::body::Bytes) -> Reply {
    let spec: OperatorSpec = body(&b)?;
    let r = registry::create_operator(s.store(), &spec).await?;
    reloaded(&s).await;
    created(registry::operator_view(&r))
}

async fn get_operator(State(s): State<DiscoveryState>, Path(id): Path<String>) -> Reply {
    let r = s
        .store()
        .get_operator(&id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    ok(registry::operator_view(&r))
}

async fn update_operator(
    State(s): State<DiscoveryState>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let spec: OperatorSpec = body(&b)?;
    let r = registry::update_operator(s.store(), &id, &spec).await?;
    reloaded(&s).await;
    ok(registry::operator_view(&r))
}

async fn delete_operator(State(s): State<DiscoveryState>, Path(id): Path<String>) -> Reply {
    s.store().delete_operator(&id).await?;
    reloaded(&s).await;
    no_content()
}

async fn list_apps(State(s): State<DiscoveryState>) -> Reply {
    let all = s.store().list_discovery_apps().await?;
    ok(json!({"apps": all.iter().map(registry::app_view).collect::<Vec<_>>()}))
}

async fn create_app(State(s): State<DiscoveryState>, b: axum::body::Bytes) -> Reply {
    let spec: AppSpec = body(&b)?;
    let (r, secret) = registry::create_app(s.store(), &spec, None).await?;
    let mut v = registry::app_view(&r);
    v["client_secret"] = json!(secret);
    created(v)
}

async fn get_app(State(s): State<DiscoveryState>, Path(id): Path<String>) -> Reply {
    let r = s
        .store()
        .get_discovery_app(&id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let creds = s.store().list_operator_credentials(&id).await?;
    let mut v = registry::app_view(&r);
    v["credentials"] = json!(
        creds
            .iter()
            .map(registry::credential_view)
            .collect::<Vec<_>>()
    );
    ok(v)
}

async fn update_app(
    State(s): State<DiscoveryState>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let spec: AppSpec = body(&b)?;
    let r = registry::update_app(s.store(), &id, &spec).await?;
    ok(registry::app_view(&r))
}

async fn delete_app(State(s): State<DiscoveryState>, Path(id): Path<String>) -> Reply {
    s.store().delete_discovery_app(&id).await?;
    no_content()
}

async fn rotate_secret(State(s): State<DiscoveryState>, Path(id): Path<String>) -> Reply {
    let secret = registry::rotate_app_secret(s.store(), &id).await?;
    ok(json!({"client_id": id, "client_secret": secret}))
}

async fn list_credentials(State(s): State<DiscoveryState>, Path(id): Path<String>) -> Reply {
    s.store()
        .get_discovery_app(&id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let creds = s.store().list_operator_credentials(&id).await?;
    ok(json!({"credentials": creds.iter().map(registry::credential_view).collect::<Vec<_>>()}))
}

async fn put_credential(
    State(s): State<DiscoveryState>,
    Path((id, operator)): Path<(String, String)>,
    b: axum::body::Bytes,
) -> Reply {
    let spec: CredentialSpec = body(&b)?;
    registry::put_credential(s.store(), s.secrets(), &id, &operator, &spec).await?;
    no_content()
}

async fn delete_credential(
    State(s): State<DiscoveryState>,
    Path((id, operator)): Path<(String, String)>,
) -> Reply {
    if s.store().delete_operator_credential(&id, &operator).await? {
        no_content()
    } else {
        Err(RegistryError::NotFound.into())
    }
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default)]
    mode: Option<String>,
}

/// Removes the spooled upload when the request ends, however it ends.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `POST /numbers/import`: the CSV body is spooled to a temporary file (the import reads
/// it twice: check, then write), then imported.
async fn import(State(s): State<DiscoveryState>, Query(q): Query<ImportQuery>, b: Body) -> Reply {
    use tokio::io::AsyncWriteExt as _;
    let mode = match q.mode.as_deref() {
        None | Some("merge") => ImportMode::Merge,
        Some("replace") => ImportMode::Replace,
        Some(_) => return Err(RegistryError::Invalid("mode: merge or replace".into()).into()),
    };
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "spooling an import");
        AdminError(RegistryError::Invalid(
            "the upload could not be stored".into(),
        ))
    };
    let import_id = crate::api::now_ms() as i64;
    let spool = Spool(std::env::temp_dir().join(format!(
        "mc-discovery-import-{}-{import_id}.csv",
        std::process::id()
    )));
    let mut file = tokio::fs::File::create(&spool.0).await.map_err(io)?;
    let mut stream = b.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| AdminError(RegistryError::Invalid("the upload was interrupted".into())))?;
        total += chunk.len() as u64;
        if total > MAX_IMPORT_BYTES {
            return Err(RegistryError::Invalid(format!(
                "the upload is larger than {MAX_IMPORT_BYTES} bytes"
            ))
            .into());
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    let report = match import_file(s.store(), &spool.0, mode, import_id).await {
        Ok(r) => r,
        Err(ImportError::Invalid(lines)) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "invalid_request",
                    "error_description": "the file has errors, nothing was imported",
                    "errors": lines.iter().map(|l| json!({"line": l.line, "message": l.message})).collect::<Vec<_>>(),
                })),
            )
                .into_response());
        }
        Err(ImportError::Io(e)) => return Err(io(e)),
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    reloaded(&s).await;
    ok(json!(report))
}

async fn lookup(State(s): State<DiscoveryState>, Path(msisdn): Path<String>) -> Reply {
    let m = mc_core::msisdn::Msisdn::parse(&msisdn)
        .ok_or_else(|| RegistryError::Invalid("an international MSISDN".into()))?;
    let snap = s.snapshot();
    match snap.by_msisdn(&m) {
        Some((op, kind)) => ok(json!({
            "operator": op.record.id,
            "mcc_mnc": op.mcc_mnc(),
            "match": kind.as_str(),
        })),
        None => Err(RegistryError::NotFound.into()),
    }
}

fn kind_of(raw: &str) -> Result<NumberKind, AdminError> {
    NumberKind::parse(raw)
        .ok_or_else(|| AdminError(RegistryError::Invalid("kind: range or ported".into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    operator: String,
}

async fn put_number(
    State(s): State<DiscoveryState>,
    Path((kind, number)): Path<(String, String)>,
    b: axum::body::Bytes,
) -> Reply {
    let kind = kind_of(&kind)?;
    let nb: NumberBody = body(&b)?;
    let n = registry::put_number(s.store(), kind, &number, &nb.operator).await?;
    reloaded(&s).await;
    ok(json!({"kind": kind.as_str(), "number": n.to_string(), "operator": nb.operator}))
}

async fn delete_number(
    State(s): State<DiscoveryState>,
    Path((kind, number)): Path<(String, String)>,
) -> Reply {
    let kind = kind_of(&kind)?;
    let n = registry::parse_number(kind, &number)?;
    if !s.store().delete_number(kind, n).await? {
        return Err(RegistryError::NotFound.into());
    }
    reloaded(&s).await;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpRangeBody {
    cidr: String,
    operator: String,
}

async fn list_ip_ranges(State(s): State<DiscoveryState>) -> Reply {
    let all = s.store().list_ip_ranges().await?;
    ok(
        json!({"ip_ranges": all.iter().map(|r| json!({"cidr": r.cidr, "operator": r.operator_id})).collect::<Vec<_>>()}),
    )
}

async fn put_ip_range(State(s): State<DiscoveryState>, b: axum::body::Bytes) -> Reply {
    let r: IpRangeBody = body(&b)?;
    let cidr = registry::put_ip_range(s.store(), &r.cidr, &r.operator).await?;
    reloaded(&s).await;
    created(json!({"cidr": cidr, "operator": r.operator}))
}

#[derive(Deserialize)]
struct CidrQuery {
    cidr: String,
}

async fn delete_ip_range(State(s): State<DiscoveryState>, Query(q): Query<CidrQuery>) -> Reply {
    let canonical = crate::ip::Cidr::parse(&q.cidr)
        .map(|c| c.to_string())
        .ok_or_else(|| RegistryError::Invalid("cidr: a block such as 10.64.0.0/10".into()))?;
    if !s.store().delete_ip_range(&canonical).await? {
        return Err(RegistryError::NotFound.into());
    }
    reloaded(&s).await;
    no_content()
}
