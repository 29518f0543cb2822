//! `GET {base}/admin/v1/openapi.json`: the OpenAPI 3.1 document of the admin API
//! ([`crate::admin`]).
//!
//! The operations are described where they are implemented (`#[utoipa::path]` on the
//! handlers of [`crate::admin`]); this module holds the document's frame and the schemas of
//! the JSON bodies. The handlers parse raw bytes for their own 400s and build their answers
//! with `json!`, so the shapes are stated here; the `openapi` test checks them against what
//! the API really accepts and sends. The document names the service's base URL as its
//! server, so tools (e.g. `schemathesis`) call the right URL, and carries no secret: it is
//! served without authentication, only when the admin API is enabled.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi, ToSchema};

use crate::state::DiscoveryState;

/// Where the document is served (below the base URL's path).
pub const PATH: &str = "/admin/v1/openapi.json";

pub fn router() -> Router<DiscoveryState> {
    Router::new().route(PATH, get(serve))
}

async fn serve(State(s): State<DiscoveryState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document(s.config().base()),
    )
}

/// The document, with `base_url` (the service root, e.g. `https://host/discovery`) as its
/// server.
pub fn document(base_url: &str) -> String {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![Server::new(base_url)]);
    // Serializing a document of plain data cannot fail; an empty object is the fallback
    // that still parses.
    doc.to_json().unwrap_or_else(|_| String::from("{}"))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mobile Connect Discovery: admin API",
        description = "Operators, service providers' discovery registrations and their \
                       per-operator credentials, number ranges and ported numbers (one at a \
                       time or CSV imports), mobile-data IP ranges. Every operation needs \
                       `Authorization: Bearer <admin token>`; every write is seen by the next \
                       lookup.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        crate::admin::status,
        crate::admin::list_operators,
        crate::admin::create_operator,
        crate::admin::get_operator,
        crate::admin::update_operator,
        crate::admin::delete_operator,
        crate::admin::list_apps,
        crate::admin::create_app,
        crate::admin::get_app,
        crate::admin::update_app,
        crate::admin::delete_app,
        crate::admin::rotate_secret,
        crate::admin::list_credentials,
        crate::admin::put_credential,
        crate::admin::delete_credential,
        crate::admin::import,
        crate::admin::lookup,
        crate::admin::put_number,
        crate::admin::delete_number,
        crate::admin::list_ip_ranges,
        crate::admin::put_ip_range,
        crate::admin::delete_ip_range,
        openapi_json,
    ),
    components(schemas(
        StatusDoc,
        OperatorSpecDoc,
        LinksDoc,
        OperatorDoc,
        OperatorListDoc,
        AppSpecDoc,
        AppDoc,
        AppCreatedDoc,
        AppDetailDoc,
        AppListDoc,
        AppSecretDoc,
        CredentialSpecDoc,
        CredentialDoc,
        CredentialListDoc,
        NumberKindDoc,
        ImportModeDoc,
        ImportReportDoc,
        ImportRejectedDoc,
        LookupDoc,
        NumberOperatorDoc,
        NumberDoc,
        IpRangeDoc,
        IpRangeListDoc,
        ErrorDoc,
    )),
    // Every operation needs the token, but the document itself (`security(())` there).
    security(("admin_token" = [])),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operators", description = "Operators and the service's state"),
        (name = "apps", description = "Service providers' discovery registrations and their credentials at each operator"),
        (name = "numbers", description = "Number ranges, ported numbers and mobile-data IP ranges"),
    )
)]
pub struct ApiDoc;

/// `admin_token`: `Authorization: Bearer <token>`, the token whose SHA-256 is configured as
/// `admin_token_sha256`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "admin_token",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/admin/v1/openapi.json",
    tag = "operators",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
#[allow(dead_code)]
fn openapi_json() {}

// ---------------------------------------------------------------------------------------
// schemas of the JSON bodies (see the module docs). Patterns and limits are those of
// `registry`'s checks where a JSON Schema can state them; what it cannot (URLs that parse,
// a usable RSA key, an operator that exists) is said in the descriptions.

/// What the store holds and what the in-memory index has loaded (`GET /status`).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusDoc {
    /// The store's change counter (every discovery write moves it).
    pub generation: i64,
    /// The counter of the number tables.
    pub numbers_generation: i64,
    pub stored: StoredDoc,
    pub loaded: LoadedDoc,
}

/// Counts in the store.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Stored)]
pub struct StoredDoc {
    pub operators: u64,
    pub ranges: u64,
    pub ported: u64,
    pub ip_ranges: u64,
}

/// Counts in the in-memory snapshot that answers lookups.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Loaded)]
pub struct LoadedDoc {
    /// The generation the snapshot was built at.
    pub generation: i64,
    /// Enabled and disabled.
    pub operators: u64,
    pub ranges: u64,
    pub ported: u64,
    pub ip_ranges: u64,
    /// The number index's heap size.
    pub index_bytes: u64,
}

/// An operator's endpoints (digest §2.5): `authorization`, `token` and `issuer` are
/// required; every link but `scope` is an http(s) URL.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Links)]
#[serde(deny_unknown_fields)]
pub struct LinksDoc {
    #[schema(pattern = "^https?://")]
    pub authorization: String,
    #[schema(pattern = "^https?://")]
    pub token: String,
    #[schema(pattern = "^https?://")]
    pub issuer: String,
    #[schema(pattern = "^https?://", nullable = false)]
    pub userinfo: Option<String>,
    #[schema(pattern = "^https?://", nullable = false)]
    pub premiuminfo: Option<String>,
    #[schema(pattern = "^https?://", nullable = false)]
    pub jwks: Option<String>,
    #[schema(pattern = "^https?://", nullable = false)]
    pub tokenrevoke: Option<String>,
    #[schema(pattern = "^https?://", nullable = false)]
    pub tokenrefresh: Option<String>,
    #[serde(rename = "openid-configuration")]
    #[schema(pattern = "^https?://", nullable = false)]
    pub openid_configuration: Option<String>,
    /// The scopes the operator supports, space-separated (not a URL).
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// A new operator, or the replacement of one (`PUT`: the path's id wins over `id`).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = OperatorSpec)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpecDoc {
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub id: String,
    #[schema(pattern = "^[0-9]{3}$")]
    pub mcc: String,
    #[schema(pattern = "^[0-9]{2,3}$")]
    pub mnc: String,
    /// 1 to 128 bytes, not blank.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// 1 to 128 bytes, not blank.
    #[schema(min_length = 1, max_length = 128)]
    pub country: String,
    /// ISO 4217 (`GBP`).
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    pub links: LinksDoc,
    /// The RSA public key `subscriber_id`s are encrypted to: a JWK, or a JWKS holding an
    /// `enc` key.
    #[schema(value_type = Option<Object>)]
    pub encryption_jwk: Option<serde_json::Value>,
    /// Default true; a disabled operator serves no lookups.
    #[schema(nullable = false, default = true)]
    pub enabled: Option<bool>,
}

/// An operator as the admin API shows it.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Operator)]
pub struct OperatorDoc {
    pub id: String,
    pub mcc: String,
    pub mnc: String,
    pub name: String,
    pub country: String,
    pub currency: String,
    /// rel → href.
    pub links: std::collections::BTreeMap<String, String>,
    #[schema(value_type = Option<Object>)]
    pub encryption_jwk: Option<serde_json::Value>,
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = OperatorList)]
pub struct OperatorListDoc {
    pub operators: Vec<OperatorDoc>,
}

/// A service provider's discovery registration, new or replaced (`PUT`: the path names
/// it, `client_id` is ignored).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = AppSpec)]
#[serde(deny_unknown_fields)]
pub struct AppSpecDoc {
    /// Generated when absent.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub client_id: Option<String>,
    /// 1 to 128 bytes, not blank.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// 1 to 64 bytes, not blank.
    #[schema(min_length = 1, max_length = 64)]
    pub short_name: String,
    /// 1 to 20 http(s) URLs without a fragment, at most 2048 bytes each; a discovery
    /// request's `Redirect_URL` must be one of them.
    #[schema(min_items = 1, max_items = 20)]
    pub redirect_uris: Vec<RedirectUri>,
    /// Default true; a disabled registration is refused by the Discovery API.
    #[schema(nullable = false, default = true)]
    pub enabled: Option<bool>,
}

/// One redirect URI.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(pattern = "^https?://[^#]+$")]
pub struct RedirectUri(pub String);

/// A registration as the admin API shows it (never its secret).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = App)]
pub struct AppDoc {
    pub client_id: String,
    pub name: String,
    pub short_name: String,
    pub redirect_uris: Vec<String>,
    pub enabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A new registration with its discovery client secret (shown once).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = AppCreated)]
pub struct AppCreatedDoc {
    #[serde(flatten)]
    pub app: AppDoc,
    pub client_secret: String,
}

/// A registration with its credentials at each operator.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = AppDetail)]
pub struct AppDetailDoc {
    #[serde(flatten)]
    pub app: AppDoc,
    pub credentials: Vec<CredentialDoc>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = AppList)]
pub struct AppListDoc {
    pub apps: Vec<AppDoc>,
}

/// A new discovery client secret (shown once; the old one stops working).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = AppSecret)]
pub struct AppSecretDoc {
    pub client_id: String,
    pub client_secret: String,
}

/// What a registration uses at one operator; the secret is sealed at rest and never shown.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = CredentialSpec)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpecDoc {
    /// 1 to 256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    pub client_id: String,
    /// 1 to 512 bytes.
    #[schema(min_length = 1, max_length = 512)]
    pub client_secret: String,
    /// The name the operator knows the service provider by; 1 to 64 bytes, not blank.
    #[schema(min_length = 1, max_length = 64)]
    pub client_name: Option<String>,
}

/// A credential as the admin API shows it (never the secret).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Credential)]
pub struct CredentialDoc {
    pub operator_id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = CredentialList)]
pub struct CredentialListDoc {
    pub credentials: Vec<CredentialDoc>,
}

/// A number-range prefix, or a ported number (a whole MSISDN) that overrides its range.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = NumberKind)]
pub enum NumberKindDoc {
    Range,
    Ported,
}

/// `merge` upserts the file's entries; `replace` makes the file the whole truth for each
/// kind it holds.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ImportMode)]
pub enum ImportModeDoc {
    Merge,
    Replace,
}

/// What an import wrote.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ImportReport)]
pub struct ImportReportDoc {
    pub ranges: u64,
    pub ported: u64,
    /// Entries removed by a replacing import.
    pub purged: u64,
    /// Tags the entries this import wrote.
    pub import_id: i64,
}

/// A refused import: nothing was written; `errors` names the bad lines (the first 20) when
/// the file was at fault.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = ImportRejected)]
pub struct ImportRejectedDoc {
    pub error: String,
    pub error_description: Option<String>,
    pub errors: Option<Vec<LineErrorDoc>>,
}

/// One bad line of an import.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = LineError)]
pub struct LineErrorDoc {
    /// Counted from 1.
    pub line: u64,
    pub message: String,
}

/// Which enabled operator serves a number, and why.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Lookup)]
pub struct LookupDoc {
    pub operator: String,
    /// `<MCC>_<MNC>`.
    pub mcc_mnc: String,
    /// The entry that matched: the longest range prefix, or a ported number.
    #[serde(rename = "match")]
    pub matched: NumberKindDoc,
}

/// The operator a range or ported number belongs to.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = NumberOperator)]
#[serde(deny_unknown_fields)]
pub struct NumberOperatorDoc {
    /// An existing operator's id.
    #[schema(min_length = 1)]
    pub operator: String,
}

/// A stored range or ported number.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Number)]
pub struct NumberDoc {
    pub kind: NumberKindDoc,
    /// The digits, no `+`.
    pub number: String,
    pub operator: String,
}

/// A mobile-data IP range (`X-Source-IP` lookups).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = IpRange)]
#[serde(deny_unknown_fields)]
pub struct IpRangeDoc {
    /// `a.b.c.d/n` or `x::/n` with the host bits zero (a bare address is a /32 or /128);
    /// answers give the canonical spelling.
    #[schema(min_length = 1)]
    pub cidr: String,
    /// An existing operator's id.
    #[schema(min_length = 1)]
    pub operator: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = IpRangeList)]
pub struct IpRangeListDoc {
    pub ip_ranges: Vec<IpRangeDoc>,
}

/// An error answer.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorDoc {
    /// `invalid_request`, `not_found`, `conflict`, `invalid_token`.
    pub error: String,
    pub error_description: Option<String>,
}
