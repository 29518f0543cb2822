//! `GET /admin/v1/openapi.json`: the OpenAPI 3.1 document of the operator-facing APIs —
//! the Registry (service providers), Provisioning (subscribers, their attributes and their
//! app devices) under `/admin/v1`, and the Token Manager's introspection and revocation
//! endpoints.
//!
//! The operations are described where they are implemented (`#[utoipa::path]` on the
//! handlers of [`super::admin`], [`super::device`], [`super::introspect`],
//! [`super::revoke`]); this module
//! holds the document's frame and the schemas of the JSON bodies (the handlers parse raw
//! bytes for their own 400s, so the body shapes are stated here; the `openapi` test checks
//! them against what the API really sends). The document names the issuer as its server, so
//! tools (e.g. `schemathesis`) call the right base URL, and carries no secret: it is served
//! without authentication, only when the admin API is enabled.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi, ToSchema};

use crate::state::AppState;

/// Where the document is served (below the issuer's path).
pub const PATH: &str = "/admin/v1/openapi.json";

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(serve))
}

async fn serve(State(s): State<AppState>) -> Response {
    let mut resp = document(&s.config.issuer).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The document, with `issuer` as its server.
pub fn document(issuer: &str) -> String {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(issuer)]);
    // Serializing a document of plain data cannot fail; an empty object is the fallback
    // that still parses.
    doc.to_json().unwrap_or_else(|_| String::from("{}"))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mobile Connect gateway: operator APIs",
        description = "Registry (service providers), Provisioning (subscribers, attributes, app \
                       devices) and \
                       the Token Manager's introspection (RFC 7662) and revocation (RFC 7009). \
                       `/admin/v1` needs `Authorization: Bearer <admin token>`; `/introspect` \
                       and `/revoke` authenticate the client as the token endpoint does.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::admin::list_clients,
        super::admin::create_client,
        super::admin::get_client,
        super::admin::update_client,
        super::admin::patch_client,
        super::admin::rotate_secret,
        super::admin::list_subscribers,
        super::admin::create_subscriber,
        super::admin::get_subscriber,
        super::admin::patch_subscriber,
        super::admin::set_pin,
        super::admin::clear_pin,
        super::admin::set_user_code,
        super::admin::clear_user_code,
        super::admin::get_attributes,
        super::admin::put_attributes,
        super::admin::patch_attributes,
        super::admin::delete_attributes,
        super::device::admin_enrolment,
        super::device::admin_devices,
        super::device::admin_revoke,
        super::introspect::introspect,
        super::revoke::revoke,
        openapi_json,
    ),
    components(schemas(
        ClientSpecDoc,
        ClientViewDoc,
        ClientCreatedDoc,
        ClientSecretDoc,
        ClientPatchDoc,
        ClientStatusDoc,
        SubscriberStatusDoc,
        CapabilityDoc,
        SubscriberSpecDoc,
        SubscriberViewDoc,
        SubscriberPatchDoc,
        PinDoc,
        UserCodeDoc,
        EnrolmentDoc,
        DeviceDoc,
        DeviceListDoc,
        ErrorDoc,
        TokenQueryDoc,
        IntrospectionDoc,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "registry", description = "Service providers"),
        (name = "provisioning", description = "Subscribers, their attributes and their app devices"),
        (name = "token-manager", description = "Introspection and revocation"),
    )
)]
pub struct ApiDoc;

/// `admin_token` (Bearer) and `client` (Basic: `client_id`/`client_secret`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/admin/v1/openapi.json",
    tag = "registry",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
#[allow(dead_code)]
fn openapi_json() {}

// ---------------------------------------------------------------------------------------
// schemas of the JSON bodies (see the module docs)

// The MSISDN pattern (twice below) is what `Msisdn::parse_typed` accepts: formatting
// characters anywhere, `+` or `00` before 7 to 15 digits that do not start with 0. Stated
// exactly, so a number the document calls invalid is one the API refuses (schemathesis
// checks both ways). The PIN pattern is `mc_authn::pin::is_valid_pin`. (utoipa takes
// literals only.)

/// A subscriber's number in a path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct MsisdnPath {
    /// The subscriber's number, international format (as in `SubscriberSpec.msisdn`).
    #[param(
        pattern = r"^[ .()-]*(0[ .()-]*0[ .()-]*|\+[ .()-]*)?[1-9]([ .()-]*[0-9]){6,14}[ .()-]*$"
    )]
    msisdn: String,
}

/// A service provider's status.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ClientStatus)]
pub enum ClientStatusDoc {
    Active,
    Disabled,
}

/// A subscriber's status.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = SubscriberStatus)]
pub enum SubscriberStatusDoc {
    Active,
    Suspended,
    Retired,
}

/// The authenticators a subscriber can use (`registry::KNOWN_CAPABILITIES`).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Capability)]
pub enum CapabilityDoc {
    AppPush,
    SimApplet,
    Sms,
    Passkey,
}

/// A new or updated service provider.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ClientSpec)]
#[serde(deny_unknown_fields)]
pub struct ClientSpecDoc {
    /// Chosen by the operator, or generated when absent (on create: 1 to 128 characters of
    /// `[A-Za-z0-9-_.]`; ignored on update, the path names the client).
    pub client_id: Option<String>,
    /// At most 128 bytes, not blank.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// The Application Short Name (`client_name` of `mc_authz` requests); at most 64 bytes,
    /// not blank, no control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub short_name: String,
    /// 1 to 20 absolute URIs, matched exactly.
    #[schema(min_items = 1, max_items = 20)]
    pub redirect_uris: Vec<String>,
    /// Defaults to `openid mc_authn mc_authz`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where the sector identifier (for pairwise PCRs) comes from; else the redirect URIs'
    /// host.
    pub sector_identifier_uri: Option<String>,
    /// Registration metadata: back-channel (CIBA, Mobile Connect SI), client keys
    /// (`jwks_uri`, `jwks`, `token_endpoint_auth_method`), grant types, quotas, userinfo
    /// signing. Unknown members are refused.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// A service provider as the registry shows it (never its secret).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Client)]
pub struct ClientViewDoc {
    pub client_id: String,
    pub name: String,
    pub short_name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub sector: String,
    /// `active` or `disabled`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

/// A newly registered service provider, with its secret (shown once).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ClientCreated)]
pub struct ClientCreatedDoc {
    #[serde(flatten)]
    pub client: ClientViewDoc,
    pub client_secret: String,
}

/// A new client secret (shown once; the old one stops working).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ClientSecret)]
pub struct ClientSecretDoc {
    pub client_id: String,
    pub client_secret: String,
}

/// Enables or disables a service provider.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ClientPatch)]
#[serde(deny_unknown_fields)]
pub struct ClientPatchDoc {
    pub status: ClientStatusDoc,
}

/// A new subscriber.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = SubscriberSpec)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSpecDoc {
    /// International format, 7 to 15 digits, no leading zero; `+` or `00` may lead and
    /// spaces, dashes, dots and parentheses are dropped.
    #[schema(
        pattern = r"^[ .()-]*(0[ .()-]*0[ .()-]*|\+[ .()-]*)?[1-9]([ .()-]*[0-9]){6,14}[ .()-]*$"
    )]
    pub msisdn: String,
    /// 4 to 8 digits (LoA3).
    #[schema(pattern = r"^[0-9]{4,8}$")]
    pub pin: Option<String>,
    /// Defaults to `app_push`.
    #[serde(default)]
    pub capabilities: Vec<CapabilityDoc>,
    /// Identity attributes (the Data Gateway's vocabulary), stored with the subscriber.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
}

/// A subscriber as provisioning shows it (never the PIN).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Subscriber)]
pub struct SubscriberViewDoc {
    pub id: String,
    pub msisdn: String,
    /// `active`, `suspended` or `retired`.
    pub status: String,
    pub pin_set: bool,
    pub pin_locked: bool,
    pub capabilities: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Changes a subscriber's status or capabilities.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = SubscriberPatch)]
#[serde(deny_unknown_fields)]
pub struct SubscriberPatchDoc {
    pub status: Option<SubscriberStatusDoc>,
    pub capabilities: Option<Vec<CapabilityDoc>>,
}

/// Sets a subscriber's PIN (also the reset after a lockout).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Pin)]
#[serde(deny_unknown_fields)]
pub struct PinDoc {
    /// 4 to 8 digits.
    #[schema(pattern = r"^[0-9]{4,8}$")]
    pub pin: String,
}

/// A CIBA user code (CIBA Core §7.1), chosen by the subscriber.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = UserCode)]
#[serde(deny_unknown_fields)]
pub struct UserCodeDoc {
    /// At least 4 printable characters, at most 64 bytes.
    #[schema(min_length = 4, max_length = 64)]
    pub user_code: String,
}

/// A device enrolment code (`POST /admin/v1/subscribers/{msisdn}/enrolment`).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Enrolment)]
pub struct EnrolmentDoc {
    /// One-time, shown once; the app registers its key with it.
    pub enrolment_code: String,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// A registered device of a subscriber's app.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Device)]
pub struct DeviceDoc {
    /// The `kid` of the device's signatures; names it in the revocation route.
    pub device_id: String,
    /// What the app called it at registration ("Pixel 8").
    pub label: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A subscriber's devices.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = DeviceList)]
pub struct DeviceListDoc {
    pub devices: Vec<DeviceDoc>,
}

/// An error answer.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorDoc {
    pub error: String,
    pub error_description: Option<String>,
}

/// The form of `/introspect` and `/revoke` (client credentials in Basic or in the form).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = TokenQuery)]
pub struct TokenQueryDoc {
    pub token: String,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 7662 §2.2: `{"active": false}` for a token that is unknown, expired, revoked or
/// another client's.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Introspection)]
pub struct IntrospectionDoc {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub token_type: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    /// The PCR the token is about.
    pub sub: Option<String>,
    pub aud: Option<String>,
    pub iss: Option<String>,
    pub acr: Option<String>,
    pub amr: Option<Vec<String>>,
    pub auth_time: Option<i64>,
}
