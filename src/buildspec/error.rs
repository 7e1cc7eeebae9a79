//! The one error type of the buildspec module: an invalid buildspec names the file, the
//! 1-based line and column, and the problem; a file that cannot be read names the file.

use std::fmt::Write as _;

/// Why a buildspec was refused.
#[derive(Debug, thiserror::Error)]
pub enum BuildspecError {
    /// The text is not a valid buildspec. `line` and `column` are 1-based; problems that
    /// concern the whole document (an empty file, a missing `version`) point at 1:1 or at
    /// the start of the mapping that lacks the key.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

/// Something CodeBuild accepts and ignores, or reads its own way (a key it does not know,
/// a variable written twice): the build goes on; `--strict` makes it an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let Warning {
            file,
            line,
            column,
            message,
        } = self;
        write!(f, "{file}:{line}:{column}: warning: {message}")
    }
}

impl From<Warning> for BuildspecError {
    /// A warning made an error (`--strict`).
    fn from(w: Warning) -> Self {
        BuildspecError::invalid(&w.file, w.line, w.column, w.message)
    }
}

impl BuildspecError {
    /// The 1-based line and column of an invalid buildspec's problem.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            BuildspecError::Invalid { line, column, .. } => Some((*line, *column)),
            BuildspecError::Io { .. } => None,
        }
    }

    /// The problem without the file and location.
    pub fn message(&self) -> String {
        match self {
            BuildspecError::Invalid { message, .. } => message.clone(),
            BuildspecError::Io { source, .. } => source.to_string(),
        }
    }

    pub(super) fn invalid(
        file: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        BuildspecError::Invalid {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Converts a serde_yaml error. Its `Location` is already 1-based (libyaml's marks are
    /// 0-based; serde_yaml adds one); the ` at line L column C` that serde_yaml appends to
    /// its message is dropped, since the location leads the whole message.
    pub(super) fn from_yaml(file: &str, error: &serde_yaml::Error) -> Self {
        let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
        let mut message = error.to_string();
        let mut suffix = String::new();
        let _ = write!(suffix, " at line {line} column {column}");
        if let Some(at) = message.find(&suffix) {
            message.replace_range(at..at + suffix.len(), "");
        }
        BuildspecError::invalid(file, line, column, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_leads_and_is_not_repeated() {
        let error = serde_yaml::from_str::<Vec<u32>>("- 1\n- [x\n").unwrap_err();
        let converted = BuildspecError::from_yaml("b.yml", &error);
        let (line, column) = converted.location().unwrap();
        let text = converted.to_string();
        assert!(
            text.starts_with(&format!("b.yml:{line}:{column}: ")),
            "{text}"
        );
        assert!(
            !text.contains(&format!("at line {line} column {column}")),
            "{text}"
        );
    }

    #[test]
    fn io_errors_name_the_file() {
        let error = BuildspecError::Io {
            file: "x.yml".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(error.to_string().starts_with("x.yml: "));
        assert_eq!(error.location(), None);
    }
}
