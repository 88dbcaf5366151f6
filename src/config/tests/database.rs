//! The database URL from Tutor's `DB_MIGRATION_*` parts and the ranking of its names.

use super::*;

const TUTOR: &[(&str, &str)] = &[
    ("DB_MIGRATION_ENGINE", "django.db.backends.mysql"),
    ("DB_MIGRATION_NAME", "webhook_receiver"),
    ("DB_MIGRATION_USER", "webhook_receiver"),
    ("DB_MIGRATION_PASS", "p@ss/w:rd"),
    ("DB_MIGRATION_HOST", "mysql"),
    ("DB_MIGRATION_PORT", "3306"),
    ("DB_MIGRATION_OPTIONS", "{}"),
];

#[test]
fn tutors_db_migration_settings_make_a_mysql_url() {
    let config = load_env(TUTOR).unwrap();
    assert_eq!(
        config.database_url,
        "mysql://webhook_receiver:p%40ss%2Fw%3Ard@mysql:3306/webhook_receiver"
    );
    let without_port: Vec<_> = TUTOR
        .iter()
        .copied()
        .filter(|(k, _)| *k != "DB_MIGRATION_PORT")
        .collect();
    assert!(load_env(&without_port)
        .unwrap()
        .database_url
        .contains("@mysql/webhook_receiver"));
    let sqlite = load_env(&[
        ("DB_MIGRATION_ENGINE", "django.db.backends.sqlite3"),
        ("DB_MIGRATION_NAME", "/data/wh.sqlite3"),
    ])
    .unwrap();
    assert_eq!(sqlite.database_url, "sqlite:///data/wh.sqlite3");
    let postgres = load_env(&[
        ("DB_MIGRATION_ENGINE", "django.db.backends.postgresql"),
        ("DB_MIGRATION_NAME", "wh"),
        ("DB_MIGRATION_HOST", "pg"),
    ])
    .unwrap();
    assert_eq!(postgres.database_url, "postgres://pg/wh");
}

#[test]
fn database_names_rank_ours_then_django_then_tutor() {
    let mut pairs = TUTOR.to_vec();
    pairs.push(("DJANGO_DATABASE_URL", "postgresql://u:p@pg/d"));
    assert_eq!(
        load_env(&pairs).unwrap().database_url,
        "postgres://u:p@pg/d"
    );
    pairs.push(("EDX_WEBHOOKS_DATABASE_URL", "sqlite://mine.db"));
    assert_eq!(load_env(&pairs).unwrap().database_url, "sqlite://mine.db");
}

#[test]
fn broken_db_migration_settings_are_named() {
    let err = error_of(&[
        ("DB_MIGRATION_NAME", "wh"),
        ("DB_MIGRATION_PASS", "hunter2"),
    ]);
    assert!(
        err.contains("DB_MIGRATION_ENGINE") && !err.contains("hunter2"),
        "{err}"
    );
    let err = error_of(&[("DB_MIGRATION_ENGINE", "django.db.backends.mysql")]);
    assert!(err.contains("DB_MIGRATION_NAME"), "{err}");
    let err = error_of(&[
        ("DB_MIGRATION_ENGINE", "django.db.backends.oracle"),
        ("DB_MIGRATION_NAME", "wh"),
    ]);
    assert!(
        err.contains("DB_MIGRATION_ENGINE") && err.contains("oracle"),
        "{err}"
    );
    let mut bad_port = TUTOR.to_vec();
    bad_port.push(("DB_MIGRATION_PORT", "three"));
    let bad_port: Vec<_> = bad_port
        .into_iter()
        .filter(|(k, v)| *k != "DB_MIGRATION_PORT" || *v == "three")
        .collect();
    let err = error_of(&bad_port);
    assert!(
        err.contains("DB_MIGRATION_PORT") && err.contains("three"),
        "{err}"
    );
}
