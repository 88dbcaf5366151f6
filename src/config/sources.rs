//! Where settings come from, and which layer's value wins: defaults < config
//! file < `.env` < environment < command line. An empty value is not set.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::error::shown;
use super::file::{self, FileLayer};
use super::settings::{Setting, ALL, CONFIG_FILE};
use super::values::Parsed;
use super::{ConfigError, Warning};

/// The prefixes of names that are ours (or the Django app's): any other such
/// name in `.env` or the environment is most likely a typo.
const OUR_PREFIXES: &[&str] = &["EDX_WEBHOOKS_", "DJANGO_WEBHOOK_RECEIVER_"];
/// Names of ours that are not settings of the service: the test suite's.
const NOT_SETTINGS: &[&str] = &["EDX_WEBHOOKS_TEST_", "EDX_WEBHOOKS_UPDATE_SCREENSHOTS"];

/// Where settings come from. `env` is the process environment (tests pass a map).
/// Not `Debug`: the maps hold secrets.
#[derive(Clone, Default)]
pub struct Sources {
    /// `--config FILE`; if `None`, `EDX_WEBHOOKS_CONFIG` (command line,
    /// environment or `.env`) names the file, and without it there is none.
    pub file: Option<PathBuf>,
    /// Normally `Some(".env")`: a missing file is fine, an unreadable or
    /// malformed one is an error.
    pub dotenv: Option<PathBuf>,
    pub env: HashMap<String, String>,
    /// Command-line flags, keyed by environment name, e.g. `EDX_WEBHOOKS_LISTEN`.
    pub overrides: HashMap<String, String>,
}

impl Sources {
    /// The process's environment and `./.env`, without a config file flag.
    pub fn from_process() -> Sources {
        let env = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Sources {
            file: None,
            dotenv: Some(PathBuf::from(".env")),
            env,
            overrides: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Origin {
    File(PathBuf),
    DotEnv(PathBuf),
    Environment,
    CommandLine,
}

impl Origin {
    /// Where `name` was set, for messages.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Origin::File(path) => format!("`{name}` in config file {}", path.display()),
            Origin::DotEnv(path) => format!("{name} in .env file {}", path.display()),
            Origin::Environment => format!("environment variable {name}"),
            Origin::CommandLine => format!("command line ({name})"),
        }
    }
}

/// A setting's text as found: the name it was given under, and where.
/// Not `Debug`: the text may be a secret.
#[derive(Clone)]
pub(super) struct Raw {
    pub value: String,
    pub name: String,
    pub origin: Origin,
}

impl Raw {
    pub fn describe(&self) -> String {
        self.origin.describe(&self.name)
    }

    pub fn parse<T>(
        &self,
        setting: &Setting,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> Result<T, ConfigError> {
        parse(&self.value).map_err(|reason| ConfigError::Invalid {
            setting: setting.env.to_owned(),
            value: shown(&self.value, setting.secret),
            origin: self.describe(),
            reason,
        })
    }
}

struct EnvLayer {
    origin: Origin,
    vars: HashMap<String, String>,
}

impl EnvLayer {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }
}

pub(super) struct Layers {
    file: Option<FileLayer>,
    /// `.env`, environment, command line: weakest first.
    env_layers: Vec<EnvLayer>,
    /// Every name a setting was looked up by: what the loader knows.
    asked: RefCell<HashSet<&'static str>>,
}

impl Layers {
    pub fn read(sources: &Sources) -> Result<Layers, ConfigError> {
        let mut env_layers = Vec::new();
        if let Some(path) = &sources.dotenv {
            if let Some(vars) = read_dotenv(path)? {
                env_layers.push(EnvLayer {
                    origin: Origin::DotEnv(path.clone()),
                    vars,
                });
            }
        }
        env_layers.push(EnvLayer {
            origin: Origin::Environment,
            vars: sources.env.clone(),
        });
        env_layers.push(EnvLayer {
            origin: Origin::CommandLine,
            vars: sources.overrides.clone(),
        });
        let mut layers = Layers {
            file: None,
            env_layers,
            // The settings table, and below every name the loader asks for.
            asked: RefCell::new(
                ALL.iter()
                    .flat_map(|s| std::iter::once(s.env).chain(s.aliases.iter().copied()))
                    .collect(),
            ),
        };
        let path = match &sources.file {
            Some(path) => Some(path.clone()),
            None => layers.get(&CONFIG_FILE).map(|raw| PathBuf::from(raw.value)),
        };
        if let Some(path) = path {
            layers.file = Some(file::read(&path)?);
        }
        Ok(layers)
    }

    /// The value of `setting` from the strongest layer that sets it; within
    /// one layer our name wins over the aliases, in their order.
    pub fn get(&self, setting: &Setting) -> Option<Raw> {
        let names = || std::iter::once(setting.env).chain(setting.aliases.iter().copied());
        self.asked.borrow_mut().extend(names());
        for layer in self.env_layers.iter().rev() {
            if let Some((name, value)) = names().find_map(|name| Some((name, layer.get(name)?))) {
                return Some(Raw {
                    value: value.to_owned(),
                    name: name.to_owned(),
                    origin: layer.origin.clone(),
                });
            }
        }
        let file = self.file.as_ref()?;
        let key = setting.key?;
        file.values.get(key).map(|value| Raw {
            value: value.clone(),
            name: key.to_owned(),
            origin: Origin::File(file.path.clone()),
        })
    }

    /// Parses `setting` into `target` if any layer sets it.
    pub fn apply<T>(
        &self,
        setting: &Setting,
        parse: impl FnOnce(&str) -> Parsed<T>,
        target: &mut T,
    ) -> Result<(), ConfigError> {
        if let Some(raw) = self.get(setting) {
            *target = raw.parse(setting, parse)?;
        }
        Ok(())
    }

    pub fn file(&self) -> Option<&FileLayer> {
        self.file.as_ref()
    }

    /// Names of ours in `.env` or the environment that no setting was looked
    /// up by, after loading: each with the closest known name. (The config
    /// file refuses unknown keys; flags are checked by the parser.)
    pub fn unknown_names(&self) -> Vec<Warning> {
        let asked = self.asked.borrow();
        let mut found: Vec<Warning> = Vec::new();
        for layer in &self.env_layers {
            if matches!(layer.origin, Origin::CommandLine) {
                continue;
            }
            let mut names: Vec<&String> = layer
                .vars
                .keys()
                .filter(|name| OUR_PREFIXES.iter().any(|p| name.starts_with(p)))
                .filter(|name| !NOT_SETTINGS.iter().any(|p| name.starts_with(p)))
                .filter(|name| !asked.contains(name.as_str()))
                .collect();
            names.sort();
            for name in names {
                let closest = asked
                    .iter()
                    .min_by_key(|known| (edit_distance(name, known), **known))
                    .copied()
                    .unwrap_or(CONFIG_FILE.env);
                found.push(Warning {
                    subject: format!("setting {name}"),
                    problem: format!(
                        "{} is not a known setting and is ignored; did you mean {closest}?",
                        layer.origin.describe(name)
                    ),
                });
            }
        }
        found
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// `None` when there is no such file; the process environment stays untouched.
fn read_dotenv(path: &Path) -> Result<Option<HashMap<String, String>>, ConfigError> {
    let items = match dotenvy::from_path_iter(path) {
        Ok(items) => items,
        Err(e) if e.not_found() => return Ok(None),
        Err(e) => return Err(dotenv_error(path, e)),
    };
    let mut vars = HashMap::new();
    for item in items {
        // Later lines win, as in a shell and python-dotenv.
        let (name, value) = item.map_err(|e| dotenv_error(path, e))?;
        vars.insert(name, value);
    }
    Ok(Some(vars))
}

/// Never quotes the offending line: it may hold a secret.
fn dotenv_error(path: &Path, error: dotenvy::Error) -> ConfigError {
    match error {
        dotenvy::Error::Io(source) => ConfigError::Unreadable {
            what: ".env file",
            path: path.to_owned(),
            source,
        },
        dotenvy::Error::LineParse(line, _) => {
            let line_number = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| line_number_of(&text, &line));
            ConfigError::Malformed {
                file: match line_number {
                    Some(n) => format!(".env file {}, line {n}", path.display()),
                    None => format!(".env file {}", path.display()),
                },
                message: "cannot parse this line (a value with spaces, # or quotes needs quoting)"
                    .into(),
            }
        }
        other => ConfigError::Malformed {
            file: format!(".env file {}", path.display()),
            message: other.to_string(),
        },
    }
}

fn line_number_of(text: &str, line: &str) -> Option<usize> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return None;
    }
    let at = text.find(line)?;
    Some(text[..at].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests;
