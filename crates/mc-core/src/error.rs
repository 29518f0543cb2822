//! The one error type of the Mobile Connect profile and its one mapping to the wire.
//!
//! Each variant is one row of the Mobile Connect error table (digest §4.6, and the OAuth/OIDC
//! rows of the token and userinfo endpoints). The `error` code, the `error_description` text
//! and the HTTP status are decided here and nowhere else. Whether an error may be sent back
//! by redirect is a property of the variant ([`McError::may_redirect`]): an unverified
//! client or redirect URI is answered with a page, never a `Location`.

use std::borrow::Cow;

/// OAuth / OIDC / Mobile Connect `error` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    ServerError,
    TemporarilyUnavailable,
    UnsupportedResponseType,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedTokenType,
    InvalidToken,
    InsufficientScope,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    ExpiredLoginHintToken,
    UnknownUserId,
    MissingUserCode,
    InvalidUserCode,
    InvalidBindingMessage,
    AuthorizationError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::ExpiredLoginHintToken => "expired_login_hint_token",
            ErrorCode::UnknownUserId => "unknown_user_id",
            ErrorCode::MissingUserCode => "missing_user_code",
            ErrorCode::InvalidUserCode => "invalid_user_code",
            ErrorCode::InvalidBindingMessage => "invalid_binding_message",
            ErrorCode::AuthorizationError => "authorization_error",
        }
    }
}

/// Every way a Mobile Connect request can be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McError {
    // ---- authorization endpoint, answered with a page (the client cannot be trusted yet)
    #[error("client_id missing")]
    MissingClientId,
    #[error("unknown client")]
    UnknownClient,
    #[error("redirect_uri missing")]
    MissingRedirectUri,
    #[error("redirect_uri not registered")]
    UnregisteredRedirectUri,
    #[error("client_id or redirect_uri given more than once")]
    DuplicateClientParameter,
    #[error("request too large or not decodable")]
    MalformedRequest,

    // ---- authorization endpoint, answered by redirect to the verified redirect_uri
    #[error("response_type missing or invalid")]
    InvalidResponseType,
    #[error("scope missing")]
    MissingScope,
    #[error("scope invalid or not allowed")]
    InvalidScope,
    #[error("version missing or invalid")]
    InvalidVersion,
    #[error("state missing or invalid")]
    InvalidState,
    #[error("nonce missing or invalid")]
    InvalidNonce,
    #[error("acr_values missing or invalid")]
    InvalidAcrValues,
    #[error("login_hint or login_hint_token invalid")]
    InvalidLoginHint,
    #[error("login_hint and login_hint_token both missing")]
    MissingLoginHint,
    #[error("duplicate parameters")]
    DuplicateParameters,
    #[error("prompt invalid")]
    InvalidPrompt,
    #[error("display invalid")]
    InvalidDisplay,
    #[error("claims invalid")]
    InvalidClaims,
    #[error("max_age invalid")]
    InvalidMaxAge,
    #[error("client_name missing or not the registered short name")]
    InvalidClientName,
    #[error("context missing or invalid")]
    InvalidContext,
    #[error("binding_message invalid")]
    InvalidBindingMessage,
    #[error("correlation_id invalid")]
    InvalidCorrelationId,
    #[error("PKCE parameters invalid")]
    InvalidCodeChallenge,
    #[error("response_mode unsupported")]
    UnsupportedResponseMode,
    #[error("request parameter unsupported")]
    RequestNotSupported,
    #[error("request_uri parameter unsupported")]
    RequestUriNotSupported,
    #[error("parameter {0} invalid")]
    InvalidParameter(&'static str),
    #[error("client may not request an authorization code")]
    ClientNotAuthorizedForCode,
    #[error("client disabled")]
    ClientNotAllowed,
    #[error("unknown or unusable subscriber")]
    UnknownUser,
    #[error("subscriber busy with another transaction")]
    UserBusy,
    #[error("subscriber refused")]
    UserDenied,
    #[error("no authenticator can reach the requested level")]
    LoaUnavailable,
    #[error("the subscriber did not answer in time")]
    AuthenticationTimeout,
    #[error("PIN attempts exhausted")]
    PinLocked,
    #[error("SMS code attempts exhausted")]
    OtpLocked,
    #[error("prompt=none cannot be honoured")]
    LoginRequired,
    #[error("throttled")]
    Throttled,

    // ---- token endpoint
    #[error("client authentication failed")]
    InvalidClient,
    #[error("grant invalid: {0}")]
    InvalidGrant(&'static str),
    #[error("grant_type unsupported")]
    UnsupportedGrantType,
    #[error("grant_type not allowed for this client")]
    UnauthorizedGrantType,
    #[error("token request invalid: {0}")]
    InvalidTokenRequest(&'static str),
    /// Revocation (RFC 7009 §2.2.1): a `token_type_hint` this server does not revoke.
    #[error("token type unsupported")]
    UnsupportedTokenType,

    // ---- protected resources
    #[error("no access token")]
    MissingAccessToken,
    #[error("access token invalid")]
    InvalidAccessToken,

    // ---- back channel (CIBA Core §11, §13; Mobile Connect SI, digest §9)
    #[error("CIBA: the user could not be identified")]
    UnknownUserId,
    #[error("CIBA: login_hint_token expired")]
    ExpiredLoginHintToken,
    #[error("CIBA: user_code missing")]
    MissingUserCode,
    #[error("CIBA: user_code invalid")]
    InvalidUserCode,
    #[error("CIBA: binding_message invalid")]
    CibaInvalidBindingMessage,
    #[error("authorization pending")]
    AuthorizationPending,
    #[error("polling too fast")]
    SlowDown,
    #[error("auth_req_id expired")]
    ExpiredToken,
    #[error("back-channel request invalid: {0}")]
    BackchannelInvalid(String),
    #[error("back-channel client unauthorized: {0}")]
    BackchannelUnauthorized(&'static str),
    #[error("the subscriber did not consent in time")]
    SiTimeout,
    #[error("the subscriber denied the request")]
    SiDenied,
    #[error("the previous transaction is not finished")]
    SiBusy,

    // ---- ours
    #[error("internal error")]
    ServerError,
    #[error("temporarily unavailable")]
    TemporarilyUnavailable,
}

impl McError {
    /// The `error` code on the wire.
    pub fn code(&self) -> ErrorCode {
        use McError::*;
        match self {
            MissingClientId
            | UnknownClient
            | MissingRedirectUri
            | UnregisteredRedirectUri
            | DuplicateClientParameter
            | MalformedRequest => ErrorCode::InvalidRequest,
            InvalidResponseType => ErrorCode::InvalidRequest,
            MissingScope => ErrorCode::InvalidScope,
            InvalidScope => ErrorCode::InvalidScope,
            InvalidVersion
            | InvalidState
            | InvalidNonce
            | InvalidAcrValues
            | InvalidLoginHint
            | MissingLoginHint
            | DuplicateParameters
            | InvalidPrompt
            | InvalidDisplay
            | InvalidClaims
            | InvalidMaxAge
            | InvalidClientName
            | InvalidContext
            | InvalidBindingMessage
            | InvalidCorrelationId
            | InvalidCodeChallenge
            | UnsupportedResponseMode
            | InvalidParameter(_)
            | ClientNotAuthorizedForCode => ErrorCode::InvalidRequest,
            RequestNotSupported => ErrorCode::RequestNotSupported,
            UnknownUserId => ErrorCode::UnknownUserId,
            ExpiredLoginHintToken => ErrorCode::ExpiredLoginHintToken,
            MissingUserCode => ErrorCode::MissingUserCode,
            InvalidUserCode => ErrorCode::InvalidUserCode,
            CibaInvalidBindingMessage => ErrorCode::InvalidBindingMessage,
            AuthorizationPending => ErrorCode::AuthorizationPending,
            SlowDown => ErrorCode::SlowDown,
            ExpiredToken => ErrorCode::ExpiredToken,
            BackchannelInvalid(_) => ErrorCode::InvalidRequest,
            BackchannelUnauthorized(_) => ErrorCode::UnauthorizedClient,
            SiTimeout | SiDenied | SiBusy => ErrorCode::AuthorizationError,
            RequestUriNotSupported => ErrorCode::RequestUriNotSupported,
            ClientNotAllowed
            | UnknownUser
            | UserBusy
            | UserDenied
            | LoaUnavailable
            | AuthenticationTimeout
            | PinLocked
            | OtpLocked => ErrorCode::AccessDenied,
            LoginRequired => ErrorCode::LoginRequired,
            Throttled | TemporarilyUnavailable => ErrorCode::TemporarilyUnavailable,
            InvalidClient => ErrorCode::InvalidClient,
            InvalidGrant(_) => ErrorCode::InvalidGrant,
            UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            UnauthorizedGrantType => ErrorCode::UnauthorizedClient,
            UnsupportedTokenType => ErrorCode::UnsupportedTokenType,
            InvalidTokenRequest(_) => ErrorCode::InvalidRequest,
            MissingAccessToken => ErrorCode::InvalidRequest,
            InvalidAccessToken => ErrorCode::InvalidToken,
            ServerError => ErrorCode::ServerError,
        }
    }

    /// The `error_description` on the wire: the Mobile Connect profile's texts (digest §4.6).
    pub fn description(&self) -> Cow<'static, str> {
        use McError::*;
        Cow::Borrowed(match self {
            MissingClientId => "MANDATORY parameter client_id is missing",
            UnknownClient => "The client_id is not registered",
            MissingRedirectUri => "MANDATORY parameter redirect_uri is missing",
            UnregisteredRedirectUri => "The redirect_uri is not registered for this client",
            DuplicateClientParameter | DuplicateParameters => {
                "Multiple parameter names in the authorization request. Malformed request, duplicate parameter entries"
            }
            MalformedRequest => "Malformed request",
            InvalidResponseType => {
                "MANDATORY parameter response_type is missing or value is invalid"
            }
            MissingScope => "MANDATORY parameter scope is missing",
            InvalidScope => "The scope value is invalid",
            InvalidVersion => "MANDATORY parameter version is missing / invalid.",
            InvalidState => "RECOMMENDED parameter state is invalid",
            InvalidNonce => "MANDATORY parameter nonce is missing (or) invalid",
            InvalidAcrValues => "MANDATORY parameter acr_values are missing or invalid values",
            InvalidLoginHint => "Invalid value for login_hint or login_hint_token",
            MissingLoginHint => {
                "MANDATORY parameters login_hint_token (or) login_hint does not exist."
            }
            InvalidPrompt => "Prompt value is invalid",
            InvalidDisplay => "Invalid display value (or) not supported.",
            InvalidClaims => "claims value is invalid",
            InvalidMaxAge => "max_age value is invalid",
            InvalidClientName => {
                "MANDATORY parameter client_name is missing or does not match the registered name"
            }
            InvalidContext => "MANDATORY parameter context is missing or invalid",
            InvalidBindingMessage => "binding_message value is invalid",
            InvalidCorrelationId => "correlation_id value is invalid",
            InvalidCodeChallenge => {
                "code_challenge or code_challenge_method is invalid (only S256 is supported)"
            }
            UnsupportedResponseMode => "response_mode is not supported",
            RequestNotSupported => "The request parameter is not supported",
            RequestUriNotSupported => "The request_uri parameter is not supported",
            InvalidParameter(name) => return Cow::Owned(format!("Parameter {name} is invalid")),
            ClientNotAuthorizedForCode => {
                "The client is not authorized to request an authorization code"
            }
            ClientNotAllowed => "The client is not allowed to make MC service requests",
            UnknownUser => "Unknown Mobile Connect User",
            UserBusy => "The user is busy with another transaction",
            UserDenied => "The user denied the request",
            LoaUnavailable => "The requested level of assurance cannot be provided for this user",
            AuthenticationTimeout => "The user did not respond in time",
            PinLocked => "The user has run out of PIN attempts",
            // Digest §9.5 (the MTS wording).
            OtpLocked => "The client has run out of attempts to authorize by sms code",
            LoginRequired => "User interaction is required to authenticate",
            Throttled => "Too many requests, retry later",
            InvalidClient => "Client authentication failed",
            InvalidGrant(why) => why,
            UnsupportedGrantType => "The grant_type is not supported",
            UnauthorizedGrantType => "The client is not allowed to use this grant_type",
            UnsupportedTokenType => "The token_type_hint is not supported",
            InvalidTokenRequest(why) => why,
            MissingAccessToken => "No Access Token",
            InvalidAccessToken => "The access token is invalid or expired",
            UnknownUserId => "The user could not be identified",
            ExpiredLoginHintToken => "The login_hint_token has expired",
            MissingUserCode => "A user_code is required for this client",
            InvalidUserCode => "The user_code is invalid",
            CibaInvalidBindingMessage => "The binding_message is invalid or too long",
            AuthorizationPending => "The authorization request is still pending",
            SlowDown => "Polling too fast: wait the interval between requests",
            ExpiredToken => "The auth_req_id has expired",
            BackchannelInvalid(why) => return Cow::Owned(why.clone()),
            BackchannelUnauthorized(why) => why,
            SiTimeout => "Subscriber consent waiting time expired",
            SiDenied => "Subscriber denied the request",
            SiBusy => "Previous authentication transaction is not finished",
            ServerError => "Internal Server Error",
            TemporarilyUnavailable => "The service is temporarily unavailable",
        })
    }

    /// HTTP status when the error is answered directly (not by redirect).
    pub fn http_status(&self) -> u16 {
        match self {
            McError::InvalidClient | McError::MissingAccessToken | McError::InvalidAccessToken => {
                401
            }
            McError::Throttled => 429,
            McError::ServerError => 500,
            McError::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    /// False for the errors that mean the redirect URI could not be verified: those are
    /// shown on a page, never sent to a `Location` (digest §4.6, RFC 6749 §4.1.2.1).
    pub fn may_redirect(&self) -> bool {
        !matches!(
            self,
            McError::MissingClientId
                | McError::UnknownClient
                | McError::MissingRedirectUri
                | McError::UnregisteredRedirectUri
                | McError::DuplicateClientParameter
                | McError::MalformedRequest
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One list of every variant, so the mapping test walks them all; adding a variant
    /// without listing it here fails `every_variant_is_listed` below via the match.
    fn all() -> Vec<McError> {
        use McError::*;
        vec![
            MissingClientId,
            UnknownClient,
            MissingRedirectUri,
            UnregisteredRedirectUri,
            DuplicateClientParameter,
            MalformedRequest,
            InvalidResponseType,
            MissingScope,
            InvalidScope,
            InvalidVersion,
            InvalidState,
            InvalidNonce,
            InvalidAcrValues,
            InvalidLoginHint,
            MissingLoginHint,
            DuplicateParameters,
            InvalidPrompt,
            InvalidDisplay,
            InvalidClaims,
            InvalidMaxAge,
            InvalidClientName,
            InvalidContext,
            InvalidBindingMessage,
            InvalidCorrelationId,
            InvalidCodeChallenge,
            UnsupportedResponseMode,
            RequestNotSupported,
            RequestUriNotSupported,
            InvalidParameter("x"),
            ClientNotAuthorizedForCode,
            ClientNotAllowed,
            UnknownUser,
            UserBusy,
            UserDenied,
            LoaUnavailable,
            AuthenticationTimeout,
            PinLocked,
            OtpLocked,
            LoginRequired,
            Throttled,
            InvalidClient,
            InvalidGrant("g"),
            UnsupportedGrantType,
            UnauthorizedGrantType,
            InvalidTokenRequest("t"),
            MissingAccessToken,
            InvalidAccessToken,
            UnknownUserId,
            ExpiredLoginHintToken,
            MissingUserCode,
            InvalidUserCode,
            CibaInvalidBindingMessage,
            AuthorizationPending,
            SlowDown,
            ExpiredToken,
            BackchannelInvalid("b".into()),
            BackchannelUnauthorized("u"),
            SiTimeout,
            SiDenied,
            SiBusy,
            ServerError,
            TemporarilyUnavailable,
        ]
    }

    #[test]
    fn every_variant_maps_to_a_code_a_text_and_a_status() {
        for e in all() {
            assert!(!e.code().as_str().is_empty());
            assert!(!e.description().is_empty(), "{e:?}");
            assert!((400..600).contains(&e.http_status()), "{e:?}");
            // Only server-side failures may be 5xx: a client's mistake is never a 500.
            if e.http_status() >= 500 {
                assert!(matches!(
                    e,
                    McError::ServerError | McError::TemporarilyUnavailable
                ));
            }
        }
    }

    #[test]
    fn unverifiable_client_errors_never_redirect() {
        let page_only: Vec<_> = all().into_iter().filter(|e| !e.may_redirect()).collect();
        assert_eq!(page_only.len(), 6);
        assert!(McError::UnknownUser.may_redirect());
    }

    #[test]
    fn profile_texts_match_the_error_table() {
        assert_eq!(
            McError::UserBusy.description(),
            "The user is busy with another transaction"
        );
        assert_eq!(
            McError::InvalidVersion.description(),
            "MANDATORY parameter version is missing / invalid."
        );
        assert_eq!(McError::MissingScope.code(), ErrorCode::InvalidScope);
        assert_eq!(McError::UnknownUser.code(), ErrorCode::AccessDenied);
    }
}
