//! `Config::load` end to end: layers, aliases, files, and secrets kept secret;
//! a file a topic, the helpers they share here.

use std::collections::HashMap;
use std::io::Write;

use tempfile::NamedTempFile;

use super::*;

mod database;
mod files;
mod layers;
mod products;
mod secrets;
mod shops;
mod values;

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        env: map(pairs),
        ..Sources::default()
    }
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&env(pairs))
}

fn error_of(pairs: &[(&str, &str)]) -> String {
    load_env(pairs).expect_err("should be refused").to_string()
}

fn file_with(text: &str) -> NamedTempFile {
    let mut file = NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn with_file(text: &str) -> (NamedTempFile, Sources) {
    let file = file_with(text);
    let sources = Sources {
        file: Some(file.path().to_owned()),
        ..Sources::default()
    };
    (file, sources)
}
