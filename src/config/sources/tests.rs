//! Layers and their order, `.env` files, and the names of unknown settings.

use super::super::settings::{DATABASE_URL, LISTEN, LMS_BASE_URL};
use super::*;

fn layers(dotenv: &[(&str, &str)], env: &[(&str, &str)], flags: &[(&str, &str)]) -> Layers {
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>()
    };
    Layers {
        file: None,
        asked: RefCell::default(),
        env_layers: vec![
            EnvLayer {
                origin: Origin::DotEnv(".env".into()),
                vars: map(dotenv),
            },
            EnvLayer {
                origin: Origin::Environment,
                vars: map(env),
            },
            EnvLayer {
                origin: Origin::CommandLine,
                vars: map(flags),
            },
        ],
    }
}

#[test]
fn stronger_layer_wins_even_with_an_alias() {
    let alias = "DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL";
    let l = layers(
        &[("EDX_WEBHOOKS_LMS_BASE_URL", "http://dotenv")],
        &[(alias, "http://env")],
        &[],
    );
    let raw = l.get(&LMS_BASE_URL).unwrap();
    assert_eq!(
        (raw.value.as_str(), raw.name.as_str()),
        ("http://env", alias)
    );
    assert!(matches!(raw.origin, Origin::Environment));
}

#[test]
fn within_a_layer_ours_wins_then_aliases_in_order() {
    let l = layers(
        &[],
        &[
            ("DB_MIGRATION_NAME", "x"),
            ("DJANGO_DATABASE_URL", "mysql://h/d"),
            ("EDX_WEBHOOKS_DATABASE_URL", "sqlite://a.db"),
        ],
        &[],
    );
    assert_eq!(l.get(&DATABASE_URL).unwrap().value, "sqlite://a.db");
    let l = layers(
        &[],
        &[
            ("DB_MIGRATION_NAME", "x"),
            ("DJANGO_DATABASE_URL", "mysql://h/d"),
        ],
        &[],
    );
    assert_eq!(l.get(&DATABASE_URL).unwrap().name, "DJANGO_DATABASE_URL");
}

#[test]
fn empty_and_blank_values_are_not_set() {
    let l = layers(
        &[("EDX_WEBHOOKS_LISTEN", "0.0.0.0:1")],
        &[("EDX_WEBHOOKS_LISTEN", "")],
        &[("EDX_WEBHOOKS_LISTEN", "  ")],
    );
    assert_eq!(l.get(&LISTEN).unwrap().value, "0.0.0.0:1");
    assert!(layers(&[], &[("EDX_WEBHOOKS_LISTEN", "")], &[])
        .get(&LISTEN)
        .is_none());
}

#[test]
fn edit_distances() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(
        edit_distance("EDX_WEBHOOKS_MAX_ATEMPTS", "EDX_WEBHOOKS_MAX_ATTEMPTS"),
        1
    );
}

#[test]
fn line_numbers_for_dotenv_errors() {
    let text = "A=1\n# comment\nB='unterminated\n";
    assert_eq!(line_number_of(text, "B='unterminated\n"), Some(3));
    assert_eq!(line_number_of(text, "\n"), None);
}
