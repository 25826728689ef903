//! Why a request was not authenticated (the HTTP edge answers 401, or 503 for `Unavailable`).
//!
//! Messages name the reason only; they never contain the token or any part of it.

/// A failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token too large (the limit is {0} bytes)")]
    TooLarge(usize),
    #[error("unsupported token algorithm: {0}")]
    Algorithm(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("bad token signature")]
    BadSignature,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("token has the wrong issuer")]
    WrongIssuer,
    #[error("token has the wrong audience")]
    WrongAudience,
    #[error("token lacks a required claim: {0}")]
    MissingClaim(String),
    #[error("invalid or revoked token")]
    Rejected,
    /// An opaque token where only JWTs are accepted (`ALLOW_OPAQUE_TOKENS` off, or no
    /// userinfo endpoint).
    #[error("opaque tokens are not accepted: send the SSO's JWT (ID token)")]
    OpaqueRefused,
    /// Dev mode: the `X-User-ID` (or `user_id`) given is not a usable user id (400).
    #[error("{0}")]
    BadDevUser(&'static str),
    /// The SSO could not be reached and nothing cached can answer.
    #[error("{0}")]
    Unavailable(String),
}

impl AuthError {
    /// Label for the outcome metric (low cardinality, never the token).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(_) => "malformed",
            Self::TooLarge(_) => "too_large",
            Self::Algorithm(_) => "algorithm",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim(_) => "missing_claim",
            Self::Rejected => "rejected",
            Self::BadDevUser(_) => "bad_dev_user",
            Self::OpaqueRefused => "opaque_refused",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Maps a `jsonwebtoken` failure to our reason.
pub fn from_jwt(e: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidSignature => AuthError::BadSignature,
        K::InvalidIssuer => AuthError::WrongIssuer,
        K::InvalidAudience => AuthError::WrongAudience,
        K::InvalidAlgorithm => AuthError::Algorithm("the token's algorithm does not match its key"),
        K::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        K::InvalidClaimFormat(_) => AuthError::Malformed("a claim has the wrong type"),
        K::Base64(_) => AuthError::Malformed("not base64url"),
        K::Json(_) | K::Utf8(_) => AuthError::Malformed("not JSON"),
        K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed("invalid JWT"),
    }
}
