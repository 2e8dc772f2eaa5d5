//! Errors shared by several modules.

/// A name in the configuration that is not one of the choices (a record format, a Forward
/// mode, a full-buffer policy).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// `value` is not a `what`; `choices` lists the accepted names.
    Unknown {
        what: &'static str,
        value: String,
        choices: &'static str,
    },
}

impl ParseError {
    pub(crate) fn unknown(what: &'static str, value: &str, choices: &'static str) -> ParseError {
        ParseError::Unknown {
            what,
            value: value.to_string(),
            choices,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Unknown {
                what,
                value,
                choices,
            } => write!(f, "unknown {what} {value:?} ({choices})"),
        }
    }
}

impl std::error::Error for ParseError {}
