//! `/admin/v1`: the Registry (service providers) and Provisioning (subscribers) REST API.
//! Bearer-token authenticated; served only when `admin.token_sha256` is configured.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use mc_store::{ClientStatus, SubscriberStatus};
use serde::Deserialize;
use serde_json::json;

use crate::datagw;
use crate::registry::{
    self, ClientSpec, ClientView, RegistryError, SubscriberSpec, SubscriberView,
};
use crate::state::{AppState, sha256_hex};

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/v1/clients", get(list_clients).post(create_client))
        .route(
            "/admin/v1/clients/{id}",
            get(get_client).put(update_client).patch(patch_client),
        )
        .route(
            "/admin/v1/clients/{id}/secret",
            axum::routing::post(rotate_secret),
        )
        .route(
            "/admin/v1/subscribers",
            get(list_subscribers).post(create_subscriber),
        )
        .route(
            "/admin/v1/subscribers/{msisdn}",
            get(get_subscriber).patch(patch_subscriber),
        )
        .route(
            "/admin/v1/subscribers/{msisdn}/pin",
            put(set_pin).delete(clear_pin),
        )
        .route(
            "/admin/v1/subscribers/{msisdn}/user_code",
            put(set_user_code).delete(clear_user_code),
        )
        .route(
            "/admin/v1/subscribers/{msisdn}/attributes",
            get(get_attributes)
                .put(put_attributes)
                .patch(patch_attributes)
                .delete(delete_attributes),
        )
        // Every admin route: the bearer token first.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin,
        ))
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, error) = match &self {
            RegistryError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            RegistryError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            RegistryError::Conflict => (StatusCode::CONFLICT, "conflict"),
            RegistryError::Store(e) => {
                tracing::error!(error = %e, "store failure in admin API");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
        };
        (
            status,
            Json(json!({"error": error, "error_description": self.to_string()})),
        )
            .into_response()
    }
}

/// Why an admin call failed.
enum AdminError {
    Unauthorized,
    Registry(RegistryError),
}

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        AdminError::Registry(e)
    }
}

impl From<mc_store::StoreError> for AdminError {
    fn from(e: mc_store::StoreError) -> Self {
        AdminError::Registry(e.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "invalid_token"})),
            )
                .into_response(),
            AdminError::Registry(e) => e.into_response(),
        }
    }
}

/// The admin bearer token, checked before any admin handler runs. Every admin answer is
/// `Cache-Control: no-store`: they carry client secrets, enrolment codes and subscriber data.
pub(crate) async fn require_admin(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = match authorized(&s, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// Checks the admin bearer token in constant time.
fn authorized(s: &AppState, h: &HeaderMap) -> Result<(), AdminError> {
    let expected = s.config.admin.token_sha256.as_deref().unwrap_or_default();
    let presented = super::bearer(h).map(|t| sha256_hex(&t)).unwrap_or_default();
    if !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            expected.as_bytes(),
        )
        .is_ok()
    {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

type Reply = Result<Response, AdminError>;

fn ok(v: serde_json::Value) -> Reply {
    Ok(Json(v).into_response())
}

/// JSON bodies parsed with a clear 400 (axum's `Json` extractor answers 415/422 otherwise).
/// Every admin body is a JSON object: serde would also fill a struct from an array
/// (`[null, null]`), which the OpenAPI document does not allow.
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, AdminError> {
    let invalid = |e: String| AdminError::from(RegistryError::Invalid(format!("body: {e}")));
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if !doc.is_object() {
        return Err(invalid("a JSON object is expected".into()));
    }
    serde_json::from_value(doc).map_err(|e| invalid(e.to_string()))
}

/// A client spec: a JSON object whose `metadata`, when present, is an object too (serde
/// would read the metadata struct from an array as well).
fn client_spec(bytes: &[u8]) -> Result<ClientSpec, AdminError> {
    let doc: serde_json::Value = body(bytes)?;
    if doc.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(RegistryError::Invalid("metadata: a JSON object is expected".into()).into());
    }
    serde_json::from_value(doc).map_err(|e| RegistryError::Invalid(format!("body: {e}")).into())
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients",
    tag = "registry",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every service provider", body = [super::openapi::ClientViewDoc]),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn list_clients(State(s): State<AppState>) -> Reply {
    let all = s.store.list_clients().await?;
    ok(json!(all.iter().map(ClientView::from).collect::<Vec<_>>()))
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients",
    tag = "registry",
    security(("admin_token" = [])),
    request_body(content = super::openapi::ClientSpecDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = super::openapi::ClientCreatedDoc),
        (status = 400, description = "Invalid spec", body = super::openapi::ErrorDoc),
        (status = 409, description = "The client_id exists", body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn create_client(State(s): State<AppState>, b: axum::body::Bytes) -> Reply {
    let spec = client_spec(&b)?;
    let (record, secret) = registry::create_client(&s.store, &spec).await?;
    let mut v = json!(ClientView::from(&record));
    v["client_secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients/{id}",
    tag = "registry",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses(
        (status = 200, body = super::openapi::ClientViewDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn get_client(State(s): State<AppState>, Path(id): Path<String>) -> Reply {
    let c = s.store.get_client(&id).await?;
    let c = c.ok_or(RegistryError::NotFound)?;
    ok(json!(ClientView::from(&c)))
}

#[utoipa::path(
    put,
    path = "/admin/v1/clients/{id}",
    tag = "registry",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "client_id")),
    request_body(content = super::openapi::ClientSpecDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced (the secret is kept)", body = super::openapi::ClientViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn update_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let spec = client_spec(&b)?;
    let c = registry::update_client(&s.store, &id, &spec).await?;
    ok(json!(ClientView::from(&c)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientPatch {
    status: String,
}

#[utoipa::path(
    patch,
    path = "/admin/v1/clients/{id}",
    tag = "registry",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "client_id")),
    request_body(content = super::openapi::ClientPatchDoc, content_type = "application/json"),
    responses(
        (status = 200, body = super::openapi::ClientViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn patch_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let patch: ClientPatch = body(&b)?;
    let status = ClientStatus::parse(&patch.status)
        .ok_or_else(|| RegistryError::Invalid("status: active or disabled".into()))?;
    let c = registry::set_client_status(&s.store, &id, status).await?;
    ok(json!(ClientView::from(&c)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/secret",
    tag = "registry",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses(
        (status = 200, description = "A new secret (shown once)", body = super::openapi::ClientSecretDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn rotate_secret(State(s): State<AppState>, Path(id): Path<String>) -> Reply {
    let secret = registry::rotate_client_secret(&s.store, &id).await?;
    ok(json!({"client_id": id, "client_secret": secret}))
}

#[utoipa::path(
    get,
    path = "/admin/v1/subscribers",
    tag = "provisioning",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = [super::openapi::SubscriberViewDoc]),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn list_subscribers(State(s): State<AppState>) -> Reply {
    let all = s.store.list_subscribers().await?;
    ok(json!(
        all.iter().map(SubscriberView::from).collect::<Vec<_>>()
    ))
}

/// Provisions a subscriber; an `attributes` member (the Data Gateway vocabulary) is
/// validated first and stored with it.
#[utoipa::path(
    post,
    path = "/admin/v1/subscribers",
    tag = "provisioning",
    security(("admin_token" = [])),
    request_body(content = super::openapi::SubscriberSpecDoc, content_type = "application/json"),
    responses(
        (status = 201, body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 409, description = "The number is held by another subscriber", body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn create_subscriber(State(s): State<AppState>, b: axum::body::Bytes) -> Reply {
    let mut doc: serde_json::Value = body(&b)?;
    let attributes = doc.as_object_mut().and_then(|o| o.remove("attributes"));
    if let Some(a) = &attributes {
        datagw::check_attributes(a)?;
    }
    let spec: SubscriberSpec =
        serde_json::from_value(doc).map_err(|e| RegistryError::Invalid(format!("body: {e}")))?;
    let sub = registry::create_subscriber(&s.store, &spec).await?;
    let mut view = json!(SubscriberView::from(&sub));
    if let Some(a) = attributes {
        view["attributes"] =
            datagw::set_subscriber_attributes(&s.store, &sub.msisdn, &a, false).await?;
    }
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/v1/subscribers/{msisdn}/attributes",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 200, description = "The attribute document", body = Object),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn get_attributes(State(s): State<AppState>, Path(msisdn): Path<String>) -> Reply {
    ok(datagw::subscriber_attributes(&s.store, &msisdn).await?)
}

/// Replaces the whole attribute document.
#[utoipa::path(
    put,
    path = "/admin/v1/subscribers/{msisdn}/attributes",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "The stored document", body = Object),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn put_attributes(
    State(s): State<AppState>,
    Path(msisdn): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let doc: serde_json::Value = body(&b)?;
    ok(datagw::set_subscriber_attributes(&s.store, &msisdn, &doc, false).await?)
}

/// JSON merge patch (RFC 7396): `null` removes an attribute.
#[utoipa::path(
    patch,
    path = "/admin/v1/subscribers/{msisdn}/attributes",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "The stored document (JSON merge patch, RFC 7396: null removes)", body = Object),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn patch_attributes(
    State(s): State<AppState>,
    Path(msisdn): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let doc: serde_json::Value = body(&b)?;
    ok(datagw::set_subscriber_attributes(&s.store, &msisdn, &doc, true).await?)
}

#[utoipa::path(
    delete,
    path = "/admin/v1/subscribers/{msisdn}/attributes",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn delete_attributes(State(s): State<AppState>, Path(msisdn): Path<String>) -> Reply {
    datagw::clear_subscriber_attributes(&s.store, &msisdn).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/admin/v1/subscribers/{msisdn}",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 200, body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn get_subscriber(State(s): State<AppState>, Path(msisdn): Path<String>) -> Reply {
    let sub = registry::find_subscriber(&s.store, &msisdn).await?;
    ok(json!(SubscriberView::from(&sub)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberPatch {
    status: Option<SubscriberStatus>,
    capabilities: Option<Vec<String>>,
}

#[utoipa::path(
    patch,
    path = "/admin/v1/subscribers/{msisdn}",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    request_body(content = super::openapi::SubscriberPatchDoc, content_type = "application/json"),
    responses(
        (status = 200, body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn patch_subscriber(
    State(s): State<AppState>,
    Path(msisdn): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let patch: SubscriberPatch = body(&b)?;
    let sub =
        registry::update_subscriber(&s.store, &msisdn, patch.status, patch.capabilities).await?;
    ok(json!(SubscriberView::from(&sub)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    pin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserCodeBody {
    user_code: String,
}

/// Sets the subscriber's CIBA user code (hashed); also the reset after a lockout.
#[utoipa::path(
    put,
    path = "/admin/v1/subscribers/{msisdn}/user_code",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    request_body(content = super::openapi::UserCodeDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "User code set, failures and lock cleared", body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn set_user_code(
    State(s): State<AppState>,
    Path(msisdn): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let code: UserCodeBody = body(&b)?;
    let sub = registry::set_subscriber_user_code(&s.store, &msisdn, Some(&code.user_code)).await?;
    ok(json!(SubscriberView::from(&sub)))
}

/// Removes the subscriber's CIBA user code.
#[utoipa::path(
    delete,
    path = "/admin/v1/subscribers/{msisdn}/user_code",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 200, body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn clear_user_code(State(s): State<AppState>, Path(msisdn): Path<String>) -> Reply {
    let sub = registry::set_subscriber_user_code(&s.store, &msisdn, None).await?;
    ok(json!(SubscriberView::from(&sub)))
}

/// Sets a PIN; also the reset after a lockout.
#[utoipa::path(
    put,
    path = "/admin/v1/subscribers/{msisdn}/pin",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    request_body(content = super::openapi::PinDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "PIN set, failures and lock cleared", body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn set_pin(
    State(s): State<AppState>,
    Path(msisdn): Path<String>,
    b: axum::body::Bytes,
) -> Reply {
    let pin: PinBody = body(&b)?;
    let sub = registry::set_subscriber_pin(&s.store, &msisdn, Some(&pin.pin)).await?;
    ok(json!(SubscriberView::from(&sub)))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/subscribers/{msisdn}/pin",
    tag = "provisioning",
    security(("admin_token" = [])),
    params(super::openapi::MsisdnPath),
    responses(
        (status = 200, body = super::openapi::SubscriberViewDoc),
        (status = 400, body = super::openapi::ErrorDoc),
        (status = 404, body = super::openapi::ErrorDoc),
        (status = 401, description = "Missing or wrong admin token", body = super::openapi::ErrorDoc)
    )
)]
async fn clear_pin(State(s): State<AppState>, Path(msisdn): Path<String>) -> Reply {
    let sub = registry::set_subscriber_pin(&s.store, &msisdn, None).await?;
    ok(json!(SubscriberView::from(&sub)))
}
