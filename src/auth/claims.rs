//! Claims (of a JWT or a userinfo answer) → [`CurrentUser`].
//!
//! Lenient on optional claims (a wrongly typed optional claim is treated as absent) and strict on
//! `sub`, which is the store's owner key.

use serde_json::Value;

use super::CurrentUser;
use super::error::AuthError;

fn string(claims: &Value, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(claims: &Value, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        _ => Vec::new(),
    }
}

/// `sub` exactly as sent: a non-empty string, neither trimmed nor converted. A number or a
/// padded string is refused, so `" victim "` or `42` can never name the owner `victim` or `"42"`.
fn subject(claims: &Value) -> Result<String, AuthError> {
    match claims.get("sub") {
        None | Some(Value::Null) => Err(AuthError::MissingClaim("sub".into())),
        Some(Value::String(s))
            if !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(Value::String(s)) if s.trim().is_empty() => Err(AuthError::MissingClaim("sub".into())),
        Some(_) => Err(AuthError::Malformed(
            "`sub` must be a string without surrounding spaces or control characters",
        )),
    }
}

/// The user described by `claims`; `sub` is required.
pub fn user_from_claims(claims: &Value) -> Result<CurrentUser, AuthError> {
    let id = subject(claims)?;
    let organization_ids = strings(claims, "organization_ids");
    let tenant_id = string(claims, "tenant_id")
        .or_else(|| string(claims, "organization_id"))
        .or_else(|| organization_ids.first().cloned());
    Ok(CurrentUser {
        id,
        email: string(claims, "email"),
        name: string(claims, "name"),
        role: string(claims, "role").unwrap_or_else(|| "user".into()),
        tenant_id,
        organization_ids,
        client_id: string(claims, "client_id"),
        client_name: string(claims, "client_name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_is_read_and_role_defaults_to_user() {
        let u = user_from_claims(&json!({
            "sub": "u1", "email": "a@b.c", "name": "Ann",
            "organization_ids": ["o1", "o2"], "client_id": "c", "client_name": "Book"
        }))
        .expect("valid");
        assert_eq!(u.id, "u1");
        assert_eq!(u.email.as_deref(), Some("a@b.c"));
        assert_eq!(u.name.as_deref(), Some("Ann"));
        assert_eq!(u.role, "user");
        assert_eq!(u.tenant_id.as_deref(), Some("o1"));
        assert_eq!(u.organization_ids, ["o1", "o2"]);
        assert_eq!(u.client_id.as_deref(), Some("c"));
        assert_eq!(u.client_name.as_deref(), Some("Book"));
    }

    #[test]
    fn tenant_prefers_tenant_id_then_organization_id_then_the_first_organization() {
        let t = |v: Value| user_from_claims(&v).expect("valid").tenant_id;
        assert_eq!(
            t(json!({"sub":"u","tenant_id":"t","organization_id":"o","organization_ids":["x"]})),
            Some("t".into())
        );
        assert_eq!(
            t(json!({"sub":"u","organization_id":"o","organization_ids":["x"]})),
            Some("o".into())
        );
        assert_eq!(
            t(json!({"sub":"u","organization_ids":["x"]})),
            Some("x".into())
        );
        assert_eq!(t(json!({"sub":"u"})), None);
    }

    #[test]
    fn a_missing_or_blank_subject_is_refused() {
        assert!(user_from_claims(&json!({"email":"a@b.c"})).is_err());
        assert!(user_from_claims(&json!({"sub":"  "})).is_err());
        assert!(user_from_claims(&json!({"sub": null})).is_err());
    }

    #[test]
    fn the_subject_is_an_exact_string_never_trimmed_or_converted() {
        for bad in [
            json!({"sub": " victim "}),
            json!({"sub": "victim\n"}),
            json!({"sub": 42}),
            json!({"sub": ["victim"]}),
            json!({"sub": true}),
        ] {
            assert!(user_from_claims(&bad).is_err(), "{bad} was accepted");
        }
        let u = user_from_claims(&json!({"sub": "42"})).expect("a string subject");
        assert_eq!(u.id, "42");
    }
}
