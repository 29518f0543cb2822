//! Grant type names (RFC 6749, CIBA Core §10.1).

pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// CIBA poll and ping, and the Mobile Connect SI polling variant (docs/decisions.md).
pub const CIBA: &str = "urn:openid:params:grant-type:ciba";
/// RFC 6749 §4.4: a client acting on its own behalf (Mobile Connect ATP, digest §8.4).
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// RFC 6749 §6: refresh tokens, issued with the `offline_access` scope.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Signing algorithms accepted for client-signed JWTs (request objects, client
/// assertions): asymmetric only (Mobile Connect SI: "Only asymmetric signatures are
/// supported").
pub const CLIENT_JWS_ALGS: [&str; 3] = ["RS256", "PS256", "ES256"];
