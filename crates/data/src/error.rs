//! The one error type of the data crate. Every variant names what failed (a file, a config key),
//! so a message is actionable without a backtrace.

use std::path::PathBuf;

/// Errors of the data pipeline.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O error on a file (missing file, permission, full disk...).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid Parquet, or the Parquet/Arrow layer failed on it.
    #[error("{}: parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    /// The file is readable but its columns are not what we need (missing column, wrong type,
    /// nulls or out-of-range values in an id column, malformed JSON).
    #[error("{}: {message}", path.display())]
    Schema { path: PathBuf, message: String },
    /// An output that may not be written there (it is an input, or something longtail did not
    /// write); nothing was changed.
    #[error("{}: {message}", path.display())]
    Output { path: PathBuf, message: String },
    /// A configuration value that cannot work; `key` is the config key.
    #[error("config key '{key}': {message}")]
    Config { key: String, message: String },
    /// Invalid data or arguments that are not tied to a file or a config key.
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// Shorthand for [`DataError::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`DataError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the data crate.
pub type Result<T> = std::result::Result<T, DataError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_key() {
        let e = DataError::io(
            "/x/y.parquet",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(e.to_string(), "/x/y.parquet: gone");
        assert!(std::error::Error::source(&e).is_some());
        let e = DataError::config("neg_per_pos", "must be > 0");
        assert_eq!(e.to_string(), "config key 'neg_per_pos': must be > 0");
    }
}
