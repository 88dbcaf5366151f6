//! What differs between the three databases, in one place: placeholders, the
//! clock, locking, and the few statements that are spelled differently.

use std::borrow::Cow;

/// Which database a store talks to, chosen by the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub fn of_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Some(Dialect::MySql)
        } else {
            None
        }
    }

    /// The statement with `?` placeholders numbered `$1, $2, …` for PostgreSQL.
    pub fn sql<'a>(self, sql: &'a str) -> Cow<'a, str> {
        if self != Dialect::Postgres || !sql.contains('?') {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0;
        let mut quoted = false;
        for c in sql.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '?' if !quoted => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                _ => out.push(c),
            }
        }
        Cow::Owned(out)
    }

    /// The database's clock in Unix milliseconds (SQLite's is this machine's).
    pub fn now_query(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                Some("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
            }
            Dialect::MySql => Some("SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"),
        }
    }

    /// How a writing transaction starts: SQLite takes the write lock at once,
    /// so that writers queue instead of failing halfway.
    pub fn begin(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => Some("BEGIN IMMEDIATE"),
            Dialect::Postgres | Dialect::MySql => None,
        }
    }

    /// Appended to a SELECT that claims rows: other claimers skip them.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres | Dialect::MySql => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// After a table's name: the index the query must use. SQLite, without
    /// statistics, prefers an index that gives the order asked for, even
    /// when another finds the few rows wanted at once; the servers choose well.
    pub fn indexed_by(self, index: &str) -> String {
        match self {
            Dialect::Sqlite => format!(" INDEXED BY {index}"),
            Dialect::Postgres | Dialect::MySql => String::new(),
        }
    }

    /// After a table's name: its rows are found by their ids (the primary
    /// key), never by another index. SQLite, given a long `id IN (…)` list
    /// beside `state IN (…)`, would read the state's whole range instead:
    /// every waiting item, for a claim's hundred.
    pub fn by_id(self) -> &'static str {
        match self {
            Dialect::Sqlite => " NOT INDEXED",
            Dialect::Postgres | Dialect::MySql => "",
        }
    }

    /// Appended to a SELECT whose rows the transaction will update.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
        }
    }

    /// Text in lower case as the database's `LOWER` writes it: SQLite's
    /// lowers ASCII letters only, the servers' every letter.
    pub fn lowercase(self, text: &str) -> String {
        match self {
            Dialect::Sqlite => text.to_ascii_lowercase(),
            Dialect::Postgres | Dialect::MySql => text.to_lowercase(),
        }
    }

    /// The larger of two values.
    pub fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "MAX",
            Dialect::Postgres | Dialect::MySql => "GREATEST",
        }
    }

    /// `a <op> b` that is true when both are NULL.
    pub fn null_safe_eq(self) -> &'static str {
        match self {
            Dialect::Sqlite => "IS",
            Dialect::Postgres => "IS NOT DISTINCT FROM",
            Dialect::MySql => "<=>",
        }
    }

    /// `INSERT` that does nothing when the row exists.
    pub fn insert_or_ignore(self, rest: &str) -> String {
        match self {
            Dialect::Sqlite => format!("INSERT OR IGNORE {rest}"),
            Dialect::Postgres => format!("INSERT {rest} ON CONFLICT DO NOTHING"),
            Dialect::MySql => format!("INSERT IGNORE {rest}"),
        }
    }

    /// Whether a failed statement is worth running its transaction again:
    /// deadlocks, lock wait timeouts, serialization failures, a busy SQLite.
    pub fn is_conflict(self, error: &sqlx::Error) -> bool {
        let sqlx::Error::Database(e) = error else {
            return false;
        };
        let code = e.code().unwrap_or_default();
        let message = e.message();
        match self {
            Dialect::Sqlite => code == "5" || code == "6" || message.contains("database is locked"),
            Dialect::Postgres => code == "40001" || code == "40P01",
            Dialect::MySql => {
                code == "40001"
                    || message.contains("Deadlock found")
                    || message.contains("Lock wait timeout")
                    || message.contains("Record has changed since last read")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn numbers_placeholders_for_postgres_only() {
        let sql = "SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)";
        assert_eq!(
            Dialect::Postgres.sql(sql),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
        );
        assert_eq!(Dialect::MySql.sql(sql), sql);
        assert_eq!(Dialect::Sqlite.sql(sql), sql);
    }

    #[test]
    fn knows_the_url_schemes() {
        assert_eq!(Dialect::of_url("sqlite://x.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("sqlite::memory:"), Some(Dialect::Sqlite));
        assert_eq!(
            Dialect::of_url("postgres://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::of_url("mysql://u@h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::of_url("redis://h"), None);
    }
}
