use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
    Settings::from_env(&mut Env::from_map(vars.iter().copied()))
}

fn variables(errors: &ConfigErrors) -> Vec<&str> {
    errors.0.iter().map(|e| e.variable.as_str()).collect()
}

#[test]
fn no_settings_at_all_gives_the_embedded_defaults() {
    let s = settings(&[]).expect("defaults are valid");
    assert_eq!(s.environment, Environment::Development);
    assert_eq!(s.server.port, 8000);
    assert_eq!(s.server.host.to_string(), "127.0.0.1");
    assert!(secrecy::ExposeSecret::expose_secret(&s.database.url).starts_with("sqlite:"));
    assert!(s.redis.is_none());
    assert!(s.dev_mode);
    assert_eq!(s.server.allowed_origins, vec!["http://localhost:3000"]);
}

#[test]
fn dev_mode_defaults_off_when_an_sso_is_configured() {
    let s = settings(&[("SSO_URL", "http://sso.local/")]).expect("valid");
    assert!(!s.dev_mode);
    assert_eq!(s.sso_url.as_deref(), Some("http://sso.local"));
}

#[test]
fn production_refuses_every_unsafe_setting_at_once() {
    let err = settings(&[
        ("ENVIRONMENT", "production"),
        ("ALLOWED_ORIGINS", "*"),
        ("DEV_MODE", "true"),
    ])
    .expect_err("unsafe production settings must be refused");
    let vars = variables(&err);
    assert!(vars.contains(&"ALLOWED_ORIGINS"), "{err}");
    assert!(vars.contains(&"DEV_MODE"), "{err}");
    assert!(vars.contains(&"SSO_URL"), "{err}");
    assert!(vars.contains(&"JWT_ISSUER"), "{err}");
    assert!(vars.contains(&"JWT_AUDIENCE"), "{err}");
}

#[test]
fn production_refuses_to_start_without_a_jwt_audience_and_issuer() {
    let base = [
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("ALLOWED_ORIGINS", "https://book"),
    ];
    let err = settings(&base).expect_err("any audience and issuer refused");
    assert_eq!(variables(&err), vec!["JWT_ISSUER", "JWT_AUDIENCE"]);
    let only_issuer = [base.as_slice(), &[("JWT_ISSUER", "https://sso")]].concat();
    let err = settings(&only_issuer).expect_err("any audience refused");
    assert_eq!(variables(&err), vec!["JWT_AUDIENCE"]);
}

#[test]
fn production_refuses_metering_without_its_api_url() {
    let err = settings(&[
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("ALLOWED_ORIGINS", "https://book.example.com"),
        ("JWT_ISSUER", "https://sso"),
        ("JWT_AUDIENCE", "book"),
        ("METERING_ENABLED", "true"),
    ])
    .expect_err("metering without a URL refused");
    assert_eq!(variables(&err), vec!["METERING_API_URL"]);
    let ok = settings(&[
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("ALLOWED_ORIGINS", "https://book.example.com"),
        ("JWT_ISSUER", "https://sso"),
        ("JWT_AUDIENCE", "book"),
        ("METERING_ENABLED", "true"),
        ("METERING_API_URL", "https://metering.example.com/"),
    ])
    .expect("metering with a URL");
    assert!(ok.metering.enabled);
    assert_eq!(
        ok.metering.api_url.as_deref(),
        Some("https://metering.example.com")
    );
}

#[test]
fn production_needs_explicit_origins() {
    let err = settings(&[
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("JWT_ISSUER", "https://sso"),
        ("JWT_AUDIENCE", "book"),
    ])
    .expect_err("empty origins refused");
    assert_eq!(variables(&err), vec!["ALLOWED_ORIGINS"]);
}

#[test]
fn a_safe_production_configuration_is_accepted() {
    let s = settings(&[
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso.example.com"),
        ("JWT_ISSUER", "https://sso.example.com"),
        ("JWT_AUDIENCE", "study-mode-book"),
        (
            "ALLOWED_ORIGINS",
            "https://book.example.com, https://www.example.com/",
        ),
        ("DATABASE_URL", "postgres://u@db/app"),
    ])
    .expect("valid production settings");
    assert!(!s.dev_mode);
    assert_eq!(s.database.max_connections, 25);
    assert_eq!(
        s.server.allowed_origins,
        vec!["https://book.example.com", "https://www.example.com"]
    );
}

#[test]
fn every_malformed_value_is_reported_with_its_variable() {
    let err = settings(&[
        ("PORT", "eighty"),
        ("HOST", "not-an-ip"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("LOG_FORMAT", "xml"),
        ("DEV_MODE", "maybe"),
    ])
    .expect_err("malformed values refused");
    let vars = variables(&err);
    for v in [
        "PORT",
        "HOST",
        "DATABASE_URL",
        "REDIS_URL",
        "LOG_FORMAT",
        "DEV_MODE",
    ] {
        assert!(vars.contains(&v), "{v} missing from {err}");
    }
}

#[test]
fn blank_values_count_as_unset() {
    let s = settings(&[("REDIS_URL", "  "), ("PORT", "")]).expect("blank = unset");
    assert!(s.redis.is_none());
    assert_eq!(s.server.port, 8000);
}

#[test]
fn production_without_trusted_proxies_or_shared_backends_warns_at_start() {
    let production = [
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("JWT_ISSUER", "https://sso"),
        ("JWT_AUDIENCE", "book"),
        ("ALLOWED_ORIGINS", "https://book"),
    ];
    let warnings = settings(&production).expect("valid").warnings();
    for variable in ["TRUSTED_PROXIES", "DATABASE_URL", "REDIS_URL"] {
        assert!(
            warnings.iter().any(|w| w.starts_with(variable)),
            "{variable}: {warnings:?}"
        );
    }
    let behind_ingress = [
        production.as_slice(),
        &[
            ("TRUSTED_PROXIES", "10.0.0.5"),
            ("DATABASE_URL", "postgres://u@db/app"),
            ("REDIS_URL", "redis://redis:6379"),
        ],
    ]
    .concat();
    assert_eq!(
        settings(&behind_ingress).expect("valid").warnings(),
        Vec::<String>::new()
    );
    assert!(
        settings(&[]).expect("valid").warnings().is_empty(),
        "development: none"
    );
}

#[test]
fn production_refuses_a_short_admin_secret() {
    let production = [
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("JWT_ISSUER", "https://sso"),
        ("JWT_AUDIENCE", "book"),
        ("ALLOWED_ORIGINS", "https://book"),
    ];
    let short = [production.as_slice(), &[("ADMIN_SECRET", "x")]].concat();
    let err = settings(&short).expect_err("a 1-byte secret refused");
    assert_eq!(variables(&err), vec!["ADMIN_SECRET"]);
    let long = "k".repeat(32);
    let fine = [production.as_slice(), &[("ADMIN_SECRET", long.as_str())]].concat();
    assert!(settings(&fine).is_ok());
    assert!(
        settings(&[("ADMIN_SECRET", "x")]).is_ok(),
        "development accepts any"
    );
}

#[test]
fn opaque_tokens_are_off_by_default_in_production_only() {
    let production = [
        ("ENVIRONMENT", "production"),
        ("SSO_URL", "https://sso"),
        ("JWT_ISSUER", "https://sso"),
        ("JWT_AUDIENCE", "book"),
        ("ALLOWED_ORIGINS", "https://book"),
    ];
    assert!(!settings(&production).expect("valid").auth.allow_opaque);
    let opted_in = [production.as_slice(), &[("ALLOW_OPAQUE_TOKENS", "true")]].concat();
    assert!(settings(&opted_in).expect("valid").auth.allow_opaque);
    assert!(
        settings(&[]).expect("valid").auth.allow_opaque,
        "development"
    );
}
