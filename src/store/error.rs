//! What can go wrong in the store.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}': use sqlite://PATH, postgres://... or mysql://...")]
    UnsupportedUrl(String),
    #[error("cannot open the database {database}: {source}")]
    Connect {
        database: String,
        source: sqlx::Error,
    },
    /// An SQLite file that cannot be opened or created: a setting to fix.
    #[error("cannot open the SQLite database file {}: {source}", .path.display())]
    SqliteFile {
        path: std::path::PathBuf,
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Embedded(#[from] rusqlite::Error),
    #[error("could not store the request: {0}")]
    Write(String),
    #[error("the claim's lease was lost to another worker")]
    LeaseLost,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}
