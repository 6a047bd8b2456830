//! What can go wrong before or during a run. Bad scenario input names the field and value.

use std::path::PathBuf;

/// A scenario that cannot be run, or an output that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The file could not be read.
    #[error("cannot read scenario {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML does not parse, or has unknown fields or wrongly typed values.
    #[error("scenario {name}: {message}")]
    Parse { name: String, message: String },
    /// A value parses but makes no sense (`field` says where).
    #[error("scenario {name}: {field}: {message}")]
    Invalid {
        name: String,
        field: String,
        message: String,
    },
    /// A sweep parameter that is not known or whose value does not parse.
    #[error("sweep parameter {param}: {message}")]
    Param { param: String, message: String },
    /// The engine could not be opened (storage or credential trouble).
    #[error("node {node}: engine: {message}")]
    Engine { node: usize, message: String },
    /// Writing an output failed.
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SimError {
    pub(crate) fn invalid(
        name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SimError::Invalid {
            name: name.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}
