//! Input limits: every free-text parameter has a byte bound, so a hostile request can
//! neither bloat the store nor the pages that echo it.

/// Largest accepted query string or form body on the authorization endpoint.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// `state`, `nonce`, `correlation_id` and other opaque echo values.
pub const MAX_ECHO_VALUE_BYTES: usize = 512;
/// `login_hint` (an RSA-4096 ciphertext in hex is 1024 characters plus the prefix).
pub const MAX_LOGIN_HINT_BYTES: usize = 1100;
/// `login_hint_token` and `id_token_hint` JWTs.
pub const MAX_JWT_BYTES: usize = 4096;
/// The `claims` JSON document.
pub const MAX_CLAIMS_BYTES: usize = 2048;
/// `redirect_uri`.
pub const MAX_URI_BYTES: usize = 2048;
/// `scope`.
pub const MAX_SCOPE_BYTES: usize = 1024;
/// Number of distinct parameters in one request.
pub const MAX_PARAMETERS: usize = 64;
