//! The database URL: ours, the Django app's `DJANGO_DATABASE_URL`, or Tutor's
//! `DB_MIGRATION_*` parts, each turned into our own form.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

use super::settings::*;
use super::sources::Layers;
use super::values::Parsed;
use super::ConfigError;

/// Ours, the Django app's `DJANGO_DATABASE_URL`, or Tutor's `DB_MIGRATION_*`
/// parts, in that order within a layer.
pub(super) fn database_url(layers: &Layers) -> Result<Option<String>, ConfigError> {
    let Some(raw) = layers.get(&DATABASE_URL) else {
        return Ok(None);
    };
    let url = if raw.name == DJANGO_DATABASE_URL {
        raw.parse(&DATABASE_URL, django)?
    } else if raw.name.starts_with(DB_MIGRATION_PREFIX) {
        tutor_database_url(layers)?
    } else {
        raw.parse(&DATABASE_URL, parse)?
    };
    Ok(Some(url))
}

fn tutor_database_url(layers: &Layers) -> Result<String, ConfigError> {
    let Some(engine) = layers.get(&DB_MIGRATION_ENGINE) else {
        return Err(ConfigError::Inconsistent(format!(
            "DB_MIGRATION_* settings are set but {} is not (e.g. django.db.backends.mysql); \
             set it, or set {} instead",
            DB_MIGRATION_ENGINE.env, DATABASE_URL.env
        )));
    };
    let engine = engine.parse(&DB_MIGRATION_ENGINE, django_engine)?;
    let Some(name) = layers.get(&DB_MIGRATION_NAME) else {
        return Err(ConfigError::Inconsistent(format!(
            "{} is set but {} (the database's name) is not",
            DB_MIGRATION_ENGINE.env, DB_MIGRATION_NAME.env
        )));
    };
    let port = match layers.get(&DB_MIGRATION_PORT) {
        Some(raw) => Some(raw.parse(&DB_MIGRATION_PORT, port)?),
        None => None,
    };
    let text = |setting: &Setting| layers.get(setting).map(|raw| raw.value);
    let (user, password, host) = (
        text(&DB_MIGRATION_USER),
        text(&DB_MIGRATION_PASS),
        text(&DB_MIGRATION_HOST),
    );
    let url = DatabaseParts {
        engine,
        name: &name.value,
        user: user.as_deref(),
        password: password.as_deref(),
        host: host.as_deref(),
        port,
    }
    .url();
    // The parts are percent-encoded, so the reason cannot quote the password.
    parse(&url).map_err(|reason| {
        ConfigError::Inconsistent(format!(
            "DB_MIGRATION_* do not make a valid database URL: {reason}"
        ))
    })
}

/// Our own form: `sqlite:PATH`, `postgres://...`, `postgresql://...` (stored
/// as `postgres://`) or `mysql://...`.
pub(super) fn parse(text: &str) -> Parsed<String> {
    if let Some(path) = strip_prefix_ignore_case(text, "sqlite:") {
        if path.trim_start_matches('/').is_empty() {
            return Err("sqlite needs a file, e.g. sqlite://edx-webhooks.sqlite3".into());
        }
        return Ok(format!("sqlite:{path}"));
    }
    let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "postgres://")
        .or_else(|| strip_prefix_ignore_case(text, "postgresql://"))
    {
        ("postgres", rest)
    } else if let Some(rest) = strip_prefix_ignore_case(text, "mysql://") {
        ("mysql", rest)
    } else {
        return Err("must start with sqlite:, postgres://, postgresql:// or mysql://".into());
    };
    let url = format!("{scheme}://{rest}");
    let parsed = Url::parse(&url).map_err(|e| format!("not a valid URL ({e})"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "needs a host: {scheme}://USER:PASSWORD@HOST:PORT/DATABASE"
        ));
    }
    Ok(url)
}

/// The Django app's `DJANGO_DATABASE_URL` (dj-database-url): `sqlite:///rel.db`
/// and `sqlite:////abs.db` have one slash more than ours.
pub(super) fn django(text: &str) -> Parsed<String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err("expected a URL like mysql://USER:PASSWORD@HOST:PORT/NAME".into());
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" if rest.is_empty() || rest == ":memory:" => Ok("sqlite::memory:".into()),
        "sqlite" => parse(&format!(
            "sqlite://{}",
            rest.strip_prefix('/').unwrap_or(rest)
        )),
        "postgres" | "postgresql" | "pgsql" | "postgis" => parse(&format!("postgres://{rest}")),
        "mysql" | "mysql2" | "mysqlgis" => parse(&format!("mysql://{rest}")),
        _ => Err("unsupported database: use sqlite, postgres or mysql".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

/// A Django `ENGINE` such as `django.db.backends.mysql`.
pub(super) fn django_engine(text: &str) -> Parsed<Engine> {
    let backend = text.rsplit('.').next().unwrap_or(text);
    match backend.to_ascii_lowercase().as_str() {
        "mysql" => Ok(Engine::Mysql),
        "postgresql" | "postgresql_psycopg2" | "postgis" | "postgres" => Ok(Engine::Postgres),
        "sqlite3" | "sqlite" => Ok(Engine::Sqlite),
        _ => Err("expected django.db.backends.mysql, .postgresql or .sqlite3".into()),
    }
}

pub(super) fn port(text: &str) -> Parsed<u16> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("expected a port number from 1 to 65535".into()),
    }
}

/// RFC 3986 unreserved characters stay; everything else in a user name,
/// password or database name is percent-encoded.
const URL_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL of Tutor's `DB_MIGRATION_*` parts (Django's `DATABASES` fields).
pub(super) struct DatabaseParts<'a> {
    pub engine: Engine,
    pub name: &'a str,
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
}

impl DatabaseParts<'_> {
    pub fn url(&self) -> String {
        let scheme = match self.engine {
            Engine::Sqlite => return format!("sqlite://{}", self.name),
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        };
        let mut url = format!("{scheme}://");
        if self.user.is_some() || self.password.is_some() {
            url.extend(utf8_percent_encode(self.user.unwrap_or(""), URL_PART));
            if let Some(password) = self.password {
                url.push(':');
                url.extend(utf8_percent_encode(password, URL_PART));
            }
            url.push('@');
        }
        match self.host.unwrap_or("localhost") {
            host if host.contains(':') && !host.starts_with('[') => url += &format!("[{host}]"),
            host => url += host,
        }
        if let Some(port) = self.port {
            url += &format!(":{port}");
        }
        url.push('/');
        url.extend(utf8_percent_encode(self.name, URL_PART));
        url
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_of_our_own() {
        assert_eq!(parse("sqlite://x.db").unwrap(), "sqlite://x.db");
        assert_eq!(parse("sqlite:///var/x.db").unwrap(), "sqlite:///var/x.db");
        assert_eq!(parse("sqlite::memory:").unwrap(), "sqlite::memory:");
        assert_eq!(
            parse("postgresql://u:p@db/app").unwrap(),
            "postgres://u:p@db/app"
        );
        assert_eq!(parse("postgres://db/app").unwrap(), "postgres://db/app");
        assert_eq!(
            parse("mysql://u:p@db:3306/app").unwrap(),
            "mysql://u:p@db:3306/app"
        );
        for bad in [
            "sqlite:",
            "sqlite://",
            "mongodb://db/app",
            "edx.db",
            "mysql:///app",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dj_database_urls_convert() {
        assert_eq!(
            django("sqlite:///relative.db").unwrap(),
            "sqlite://relative.db"
        );
        assert_eq!(
            django("sqlite:////abs/path.db").unwrap(),
            "sqlite:///abs/path.db"
        );
        assert_eq!(django("sqlite://:memory:").unwrap(), "sqlite::memory:");
        assert_eq!(
            django("postgres://u:p@h:5432/d").unwrap(),
            "postgres://u:p@h:5432/d"
        );
        assert_eq!(
            django("postgresql://u:p@h/d").unwrap(),
            "postgres://u:p@h/d"
        );
        assert_eq!(
            django("mysql://u:p@h:3306/d").unwrap(),
            "mysql://u:p@h:3306/d"
        );
        assert!(django("oracle://u:p@h/d").is_err());
        assert!(django("just-a-name").is_err());
    }

    #[test]
    fn tutor_parts_make_a_url() {
        let parts = DatabaseParts {
            engine: django_engine("django.db.backends.mysql").unwrap(),
            name: "webhook_receiver",
            user: Some("wh user"),
            password: Some("p@ss:w/rd%"),
            host: Some("mysql"),
            port: Some(3306),
        };
        let url = parts.url();
        assert_eq!(
            url,
            "mysql://wh%20user:p%40ss%3Aw%2Frd%25@mysql:3306/webhook_receiver"
        );
        let parsed = Url::parse(&url).unwrap();
        assert_eq!(parsed.password(), Some("p%40ss%3Aw%2Frd%25"));
        let postgres = DatabaseParts {
            engine: django_engine("django.db.backends.postgresql").unwrap(),
            name: "d",
            user: None,
            password: None,
            host: None,
            port: None,
        };
        assert_eq!(postgres.url(), "postgres://localhost/d");
        let sqlite = DatabaseParts {
            engine: django_engine("django.db.backends.sqlite3").unwrap(),
            name: "/data/wh.db",
            ..postgres
        };
        assert_eq!(sqlite.url(), "sqlite:///data/wh.db");
        assert!(django_engine("django.db.backends.oracle").is_err());
        assert!(port("0").is_err());
        assert!(port("mysql").is_err());
    }
}
