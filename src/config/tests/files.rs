//! The config file and `.env`: keys, names, where they come from.

use std::path::PathBuf;

use tempfile::TempDir;

use super::*;

#[test]
fn the_config_file_takes_flat_keys_and_refuses_unknown_ones() {
    let (_file, sources) = with_file(
        r#"
        listen = "0.0.0.0:8090"
        database_url = "sqlite:///var/lib/wh.db"
        lms_base_url = "https://lms.example.com/"
        oauth2_client_id = "id"
        oauth2_client_secret = "secret"
        require_payment = true
        send_enrollment_email = false
        retry_delay = "1m"
        max_attempts = 5
        max_body = "1MB"
        trusted_proxies = ["10.0.0.0/8", "::1"]
        log_level = "INFO"
        "#,
    );
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.listen.port(), 8090);
    assert_eq!(config.database_url, "sqlite:///var/lib/wh.db");
    assert!(config.require_payment && !config.lms.email_students);
    assert_eq!((config.retry.max_attempts, config.max_body), (5, 1_000_000));
    assert_eq!(config.trusted_proxies.len(), 2);
    assert_eq!(config.log_filter.as_deref(), Some("info"));

    let (_file, sources) = with_file("lisen = \"0.0.0.0:8090\"\n");
    let err = Config::load(&sources).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "lisen"),
        "{err}"
    );
    let (_file, sources) = with_file("max_attempts = 0\n");
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(
        err.contains("EDX_WEBHOOKS_MAX_ATTEMPTS") && err.contains("max_attempts"),
        "{err}"
    );
}

#[test]
fn the_config_file_may_be_named_in_dotenv_or_environment() {
    let dir = TempDir::new().unwrap();
    let toml = dir.path().join("wh.toml");
    std::fs::write(&toml, "workers = 11\n").unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(&dotenv, format!("EDX_WEBHOOKS_CONFIG={}\n", toml.display())).unwrap();
    let from_dotenv = Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    };
    assert_eq!(Config::load(&from_dotenv).unwrap().workers, 11);
    let from_env = env(&[("EDX_WEBHOOKS_CONFIG", toml.to_str().unwrap())]);
    assert_eq!(Config::load(&from_env).unwrap().workers, 11);
}

#[test]
fn a_named_config_file_must_exist() {
    let missing = PathBuf::from("/nonexistent/edx-webhooks.toml");
    let err = Config::load(&Sources {
        file: Some(missing.clone()),
        ..Sources::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/edx-webhooks.toml"));
    let err = load_env(&[("EDX_WEBHOOKS_CONFIG", missing.to_str().unwrap())]).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err}");
}

#[test]
fn a_missing_dotenv_is_fine_a_broken_one_is_not() {
    let dir = TempDir::new().unwrap();
    let sources = Sources {
        dotenv: Some(dir.path().join(".env")),
        ..Sources::default()
    };
    assert_eq!(Config::load(&sources).unwrap(), Config::defaults());

    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "EDX_WEBHOOKS_WORKERS=2\nEDX_WEBHOOKS_ADMIN_PASSWORD='unterminated s3cret\n",
    )
    .unwrap();
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(err.contains(".env") && err.contains("line 2"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    // A directory cannot be read as a file.
    let unreadable = Sources {
        dotenv: Some(dir.path().to_owned()),
        ..Sources::default()
    };
    assert!(Config::load(&unreadable).is_err());
}

#[test]
fn dotenv_does_not_touch_the_process_environment() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(&dotenv, "EDX_WEBHOOKS_TEST_ONLY_MARKER=1\n").unwrap();
    Config::load(&Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    })
    .unwrap();
    assert!(std::env::var_os("EDX_WEBHOOKS_TEST_ONLY_MARKER").is_none());
}

#[test]
fn single_quotes_in_dotenv_keep_spaces_and_dollar_signs() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "EDX_WEBHOOKS_ADMIN_PASSWORD='two words $HOME and $x'\n\
         EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET=\"double quotes expand ${NOT_SET_ANYWHERE}\"\n",
    )
    .unwrap();
    let (config, unknown) = Config::load_reporting(&Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(
        config.admin_password,
        Some(Secret::new("two words $HOME and $x"))
    );
    // What the README warns about: inside double quotes, `$` substitutes.
    assert_ne!(
        config.lms.client_secret.as_ref().map(Secret::expose),
        Some("double quotes expand ${NOT_SET_ANYWHERE}")
    );
    assert!(unknown.is_empty());
}

#[test]
fn example_env_holds_the_defaults_and_only_known_names() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example.env");
    let (config, unknown) = Config::load_reporting(&Sources {
        dotenv: Some(path),
        ..Sources::default()
    })
    .unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    // RUST_LOG=info is the default level, written out.
    let mut expected = Config::defaults();
    expected.log_filter = Some("info".into());
    assert_eq!(config, expected);
}
