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
//! Every answer is `Cache-Control: no-store` (secrets are shown once). The operations are
//! described in the OpenAPI document served at `{base}/admin/v1/openapi.json`
//! ([`crate::openapi`]).

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
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

/// The bearer token, checked before any admin handler runs. Every admin answer is
/// `Cache-Control: no-store`: they carry discovery client secrets.
async fn require_admin(
    State(s): State<DiscoveryState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = if authorized(&s, req.headers()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "invalid_token"})),
        )
            .into_response()
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
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

fn invalid(message: impl Into<String>) -> AdminError {
    AdminError(RegistryError::Invalid(message.into()))
}

/// JSON bodies with a clear 400. Every admin body is a JSON object: serde would also fill
/// a struct from an array (`["op-a"]`), which the OpenAPI document does not allow.
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, AdminError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("body: {e}")))?;
    if !doc.is_object() {
        return Err(invalid("body: a JSON object is expected"));
    }
    serde_json::from_value(doc).map_err(|e| invalid(format!("body: {e}")))
}

/// Path and query parameters (`Checked<Path<…>>`, `Checked<Query<…>>`) whose rejection — a
/// missing or repeated query member, a path segment that is not UTF-8 — is this API's JSON
/// 400, not axum's plain-text one.
struct Checked<E>(E);

impl<S, E> FromRequestParts<S> for Checked<E>
where
    S: Send + Sync,
    E: FromRequestParts<S>,
    E::Rejection: std::fmt::Display,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        E::from_request_parts(parts, state)
            .await
            .map(Checked)
            .map_err(|e| invalid(e.to_string()))
    }
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

#[utoipa::path(
    get,
    path = "/admin/v1/status",
    tag = "operators",
    responses(
        (status = 200, description = "Counts, generations, what the index holds", body = crate::openapi::StatusDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
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

#[utoipa::path(
    get,
    path = "/admin/v1/operators",
    tag = "operators",
    responses(
        (status = 200, body = crate::openapi::OperatorListDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn list_operators(State(s): State<DiscoveryState>) -> Reply {
    let all = s.store().list_operators().await?;
    ok(json!({"operators": all.iter().map(registry::operator_view).collect::<Vec<_>>()}))
}

#[utoipa::path(
    post,
    path = "/admin/v1/operators",
    tag = "operators",
    request_body(content = crate::openapi::OperatorSpecDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; lookups see it at once", body = crate::openapi::OperatorDoc),
        (status = 400, description = "Invalid spec", body = crate::openapi::ErrorDoc),
        (status = 409, description = "The id or the MCC/MNC pair is taken", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn create_operator(State(s): State<DiscoveryState>, b: axum::body::Bytes) -> Reply {
    let spec: OperatorSpec = body(&b)?;
    let r = registry::create_operator(s.store(), &spec).await?;
    reloaded(&s).await;
    created(registry::operator_view(&r))
}

#[utoipa::path(
    get,
    path = "/admin/v1/operators/{id}",
    tag = "operators",
    params(("id" = String, Path, description = "The operator's id")),
    responses(
        (status = 200, body = crate::openapi::OperatorDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn get_operator(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
) -> Reply {
    let r = s
        .store()
        .get_operator(&id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    ok(registry::operator_view(&r))
}

#[utoipa::path(
    put,
    path = "/admin/v1/operators/{id}",
    tag = "operators",
    params(("id" = String, Path, description = "The operator's id")),
    request_body(content = crate::openapi::OperatorSpecDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced (the path's id wins)", body = crate::openapi::OperatorDoc),
        (status = 400, description = "Invalid spec", body = crate::openapi::ErrorDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 409, description = "The MCC/MNC pair belongs to another operator", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn update_operator(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
    b: axum::body::Bytes,
) -> Reply {
    let spec: OperatorSpec = body(&b)?;
    let r = registry::update_operator(s.store(), &id, &spec).await?;
    reloaded(&s).await;
    ok(registry::operator_view(&r))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/operators/{id}",
    tag = "operators",
    params(("id" = String, Path, description = "The operator's id")),
    responses(
        (status = 204, description = "Removed, with its credentials, numbers and IP ranges"),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn delete_operator(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
) -> Reply {
    s.store().delete_operator(&id).await?;
    reloaded(&s).await;
    no_content()
}

#[utoipa::path(
    get,
    path = "/admin/v1/apps",
    tag = "apps",
    responses(
        (status = 200, body = crate::openapi::AppListDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn list_apps(State(s): State<DiscoveryState>) -> Reply {
    let all = s.store().list_discovery_apps().await?;
    ok(json!({"apps": all.iter().map(registry::app_view).collect::<Vec<_>>()}))
}

#[utoipa::path(
    post,
    path = "/admin/v1/apps",
    tag = "apps",
    request_body(content = crate::openapi::AppSpecDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = crate::openapi::AppCreatedDoc),
        (status = 400, description = "Invalid spec", body = crate::openapi::ErrorDoc),
        (status = 409, description = "The client_id exists", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn create_app(State(s): State<DiscoveryState>, b: axum::body::Bytes) -> Reply {
    let spec: AppSpec = body(&b)?;
    let (r, secret) = registry::create_app(s.store(), &spec, None).await?;
    let mut v = registry::app_view(&r);
    v["client_secret"] = json!(secret);
    created(v)
}

#[utoipa::path(
    get,
    path = "/admin/v1/apps/{id}",
    tag = "apps",
    params(("id" = String, Path, description = "The registration's client_id")),
    responses(
        (status = 200, body = crate::openapi::AppDetailDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn get_app(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
) -> Reply {
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

#[utoipa::path(
    put,
    path = "/admin/v1/apps/{id}",
    tag = "apps",
    params(("id" = String, Path, description = "The registration's client_id")),
    request_body(content = crate::openapi::AppSpecDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced (the secret is kept)", body = crate::openapi::AppDoc),
        (status = 400, description = "Invalid spec", body = crate::openapi::ErrorDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn update_app(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
    b: axum::body::Bytes,
) -> Reply {
    let spec: AppSpec = body(&b)?;
    let r = registry::update_app(s.store(), &id, &spec).await?;
    ok(registry::app_view(&r))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/apps/{id}",
    tag = "apps",
    params(("id" = String, Path, description = "The registration's client_id")),
    responses(
        (status = 204, description = "Removed, with its credentials"),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn delete_app(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
) -> Reply {
    s.store().delete_discovery_app(&id).await?;
    no_content()
}

#[utoipa::path(
    post,
    path = "/admin/v1/apps/{id}/secret",
    tag = "apps",
    params(("id" = String, Path, description = "The registration's client_id")),
    responses(
        (status = 200, description = "A new secret (shown once); the old one stops working", body = crate::openapi::AppSecretDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn rotate_secret(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
) -> Reply {
    let secret = registry::rotate_app_secret(s.store(), &id).await?;
    ok(json!({"client_id": id, "client_secret": secret}))
}

#[utoipa::path(
    get,
    path = "/admin/v1/apps/{id}/credentials",
    tag = "apps",
    params(("id" = String, Path, description = "The registration's client_id")),
    responses(
        (status = 200, body = crate::openapi::CredentialListDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn list_credentials(
    State(s): State<DiscoveryState>,
    Checked(Path(id)): Checked<Path<String>>,
) -> Reply {
    s.store()
        .get_discovery_app(&id)
        .await?
        .ok_or(RegistryError::NotFound)?;
    let creds = s.store().list_operator_credentials(&id).await?;
    ok(json!({"credentials": creds.iter().map(registry::credential_view).collect::<Vec<_>>()}))
}

#[utoipa::path(
    put,
    path = "/admin/v1/apps/{id}/credentials/{operator}",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The registration's client_id"),
        ("operator" = String, Path, description = "The operator's id")
    ),
    request_body(content = crate::openapi::CredentialSpecDoc, content_type = "application/json"),
    responses(
        (status = 204, description = "Set (the secret is sealed at rest)"),
        (status = 400, description = "Invalid spec", body = crate::openapi::ErrorDoc),
        (status = 404, description = "No such registration or operator", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn put_credential(
    State(s): State<DiscoveryState>,
    Checked(Path((id, operator))): Checked<Path<(String, String)>>,
    b: axum::body::Bytes,
) -> Reply {
    let spec: CredentialSpec = body(&b)?;
    registry::put_credential(s.store(), s.secrets(), &id, &operator, &spec).await?;
    no_content()
}

#[utoipa::path(
    delete,
    path = "/admin/v1/apps/{id}/credentials/{operator}",
    tag = "apps",
    params(
        ("id" = String, Path, description = "The registration's client_id"),
        ("operator" = String, Path, description = "The operator's id")
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 400, description = "A path segment that is not UTF-8", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn delete_credential(
    State(s): State<DiscoveryState>,
    Checked(Path((id, operator))): Checked<Path<(String, String)>>,
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

/// Imports number ranges and ported numbers from a CSV file.
///
/// Every line is checked before anything is written; then the entries are written in
/// batches.
// The body is spooled to a temporary file (the import reads it twice: check, then write).
#[utoipa::path(
    post,
    path = "/admin/v1/numbers/import",
    tag = "numbers",
    params(("mode" = Option<crate::openapi::ImportModeDoc>, Query, description = "Default `merge`")),
    request_body(content = String, content_type = "text/csv", description = "`kind,number,operator` lines: `range` (a prefix) or `ported` (an MSISDN), the digits with an optional `+`, an operator id or `MCC_MNC`; an optional header line, `#` comments"),
    responses(
        (status = 200, description = "Imported; lookups see it at once", body = crate::openapi::ImportReportDoc),
        (status = 400, description = "Nothing was imported: the lines in error, or a bad mode", body = crate::openapi::ImportRejectedDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn import(
    State(s): State<DiscoveryState>,
    Checked(Query(q)): Checked<Query<ImportQuery>>,
    b: Body,
) -> Reply {
    use tokio::io::AsyncWriteExt as _;
    let mode = match q.mode.as_deref() {
        None | Some("merge") => ImportMode::Merge,
        Some("replace") => ImportMode::Replace,
        Some(_) => return Err(RegistryError::Invalid("mode: merge or replace".into()).into()),
    };
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "spooling an import");
        invalid("the upload could not be stored")
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
        let chunk = chunk.map_err(|_| invalid("the upload was interrupted"))?;
        total += chunk.len() as u64;
        if total > MAX_IMPORT_BYTES {
            return Err(RegistryError::Invalid(format!(
                "the upload is larger than {MAX_IMPORT_BYTES} bytes"
            ))
            .into());
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    // No body is a client's slip (the document requires one), not an import of nothing.
    if total == 0 {
        return Err(invalid(
            "the upload is empty: a CSV file of kind,number,operator lines is expected",
        ));
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

#[utoipa::path(
    get,
    path = "/admin/v1/numbers/lookup/{msisdn}",
    tag = "numbers",
    params(("msisdn" = String, Path, description = "An international MSISDN, 7 to 15 digits, `+` optional", pattern = r"^\+?[1-9][0-9]{6,14}$")),
    responses(
        (status = 200, body = crate::openapi::LookupDoc),
        (status = 400, description = "Not an international MSISDN", body = crate::openapi::ErrorDoc),
        (status = 404, description = "No enabled operator serves it", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn lookup(
    State(s): State<DiscoveryState>,
    Checked(Path(msisdn)): Checked<Path<String>>,
) -> Reply {
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
    NumberKind::parse(raw).ok_or_else(|| invalid("kind: range or ported"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    operator: String,
}

#[utoipa::path(
    put,
    path = "/admin/v1/numbers/{kind}/{number}",
    tag = "numbers",
    params(
        ("kind" = crate::openapi::NumberKindDoc, Path),
        ("number" = String, Path, description = "`range`: a prefix of 1 to 15 digits; `ported`: an MSISDN of 7 to 15 digits; `+` optional", pattern = r"^\+?[1-9][0-9]{0,14}$")
    ),
    request_body(content = crate::openapi::NumberOperatorDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Set; lookups see it at once", body = crate::openapi::NumberDoc),
        (status = 400, description = "A bad number for its kind, or an unknown operator", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn put_number(
    State(s): State<DiscoveryState>,
    Checked(Path((kind, number))): Checked<Path<(String, String)>>,
    b: axum::body::Bytes,
) -> Reply {
    let kind = kind_of(&kind)?;
    let nb: NumberBody = body(&b)?;
    let n = registry::put_number(s.store(), kind, &number, &nb.operator).await?;
    reloaded(&s).await;
    ok(json!({"kind": kind.as_str(), "number": n.to_string(), "operator": nb.operator}))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/numbers/{kind}/{number}",
    tag = "numbers",
    params(
        ("kind" = crate::openapi::NumberKindDoc, Path),
        ("number" = String, Path, description = "`range`: a prefix of 1 to 15 digits; `ported`: an MSISDN of 7 to 15 digits; `+` optional", pattern = r"^\+?[1-9][0-9]{0,14}$")
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A bad number for its kind", body = crate::openapi::ErrorDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn delete_number(
    State(s): State<DiscoveryState>,
    Checked(Path((kind, number))): Checked<Path<(String, String)>>,
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

#[utoipa::path(
    get,
    path = "/admin/v1/ip-ranges",
    tag = "numbers",
    responses(
        (status = 200, body = crate::openapi::IpRangeListDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn list_ip_ranges(State(s): State<DiscoveryState>) -> Reply {
    let all = s.store().list_ip_ranges().await?;
    ok(
        json!({"ip_ranges": all.iter().map(|r| json!({"cidr": r.cidr, "operator": r.operator_id})).collect::<Vec<_>>()}),
    )
}

#[utoipa::path(
    post,
    path = "/admin/v1/ip-ranges",
    tag = "numbers",
    request_body(content = crate::openapi::IpRangeDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Set (inserted or moved to the operator); the answer has the canonical CIDR", body = crate::openapi::IpRangeDoc),
        (status = 400, description = "Not a CIDR block with the host bits zero, or an unknown operator", body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
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

#[utoipa::path(
    delete,
    path = "/admin/v1/ip-ranges",
    tag = "numbers",
    params(("cidr" = String, Query, description = "The block, in any spelling of it")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not a CIDR block with the host bits zero", body = crate::openapi::ErrorDoc),
        (status = 404, body = crate::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorDoc)
    )
)]
async fn delete_ip_range(
    State(s): State<DiscoveryState>,
    Checked(Query(q)): Checked<Query<CidrQuery>>,
) -> Reply {
    let canonical = crate::ip::Cidr::parse(&q.cidr)
        .map(|c| c.to_string())
        .ok_or_else(|| RegistryError::Invalid("cidr: a block such as 10.64.0.0/10".into()))?;
    if !s.store().delete_ip_range(&canonical).await? {
        return Err(RegistryError::NotFound.into());
    }
    reloaded(&s).await;
    no_content()
}
