//! JWT verification against the JWKS.
//!
//! The token header is read only for its `kid` (and to refuse `none`/HMAC early with a clear
//! reason); the algorithm used for verification is the one of the matched JWK. `jku`, `x5u`,
//! `x5c` and embedded `jwk` headers are ignored: keys come only from `JWKS_URL`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde_json::Value;

use super::CurrentUser;
use super::claims::user_from_claims;
use super::error::{AuthError, from_jwt};
use super::jwks::Jwks;

/// Longest `kid` accepted (a key id is a short name; anything longer is garbage).
const MAX_KID_LEN: usize = 256;

/// Verifies JWTs against one SSO's keys and the configured claims.
#[derive(Debug)]
pub struct JwtVerifier {
    pub jwks: Jwks,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub leeway_secs: u64,
}

impl JwtVerifier {
    /// The user of a valid token, or why it is not valid.
    pub async fn verify(&self, token: &str) -> Result<CurrentUser, AuthError> {
        let kid = check_header(token)?;
        let key = self.jwks.key(&kid).await?;
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
        }
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|e| from_jwt(&e))?;
        user_from_claims(&data.claims)
    }
}

/// Checks the token's shape and header; returns its `kid`.
pub fn check_header(token: &str) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("a JWT has three segments"));
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or(AuthError::Malformed("the header is not a JSON object"))?;
    match header.get("alg").and_then(Value::as_str) {
        None => return Err(AuthError::Malformed("the header has no `alg`")),
        Some(a) if a.eq_ignore_ascii_case("none") => {
            return Err(AuthError::Algorithm("`none` (unsigned tokens are refused)"));
        }
        Some(a) if a.to_ascii_uppercase().starts_with("HS") => {
            return Err(AuthError::Algorithm(
                "HMAC (only asymmetric keys are accepted)",
            ));
        }
        Some(_) => {}
    }
    // RFC 7515 §4.1.11: critical extensions we do not implement make the token invalid.
    if header.get("crit").is_some() {
        return Err(AuthError::Malformed("unsupported critical header (`crit`)"));
    }
    // Checked after `alg` so that an unsigned token (empty signature) gets the precise reason.
    for segment in [payload, signature] {
        if segment.is_empty() || URL_SAFE_NO_PAD.decode(segment).is_err() {
            return Err(AuthError::Malformed("a segment is not base64url"));
        }
    }
    match header.get("kid").and_then(Value::as_str) {
        Some(kid) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => Ok(kid.to_owned()),
        _ => Err(AuthError::Malformed("the header has no usable `kid`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"u"}"#),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    #[test]
    fn the_kid_is_read_from_a_well_formed_header() {
        assert_eq!(
            check_header(&token(r#"{"alg":"RS256","kid":"k1"}"#)),
            Ok("k1".into())
        );
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key_lookup() {
        for alg in ["none", "NONE", "HS256", "hs512"] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
            assert!(
                matches!(check_header(&t), Err(AuthError::Algorithm(_))),
                "{alg}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for t in [
            "a.b",
            "a.b.c.d",
            "..",
            "!!.??.**",
            &token("[1,2]"),
            &token(r#"{"alg":"RS256"}"#),
            &token(r#"{"kid":"k"}"#),
        ] {
            assert!(
                matches!(check_header(t), Err(AuthError::Malformed(_))),
                "{t}"
            );
        }
    }
}
