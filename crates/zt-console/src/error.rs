//! Console errors, worded as RouterOS words them (ROUTEROS.md §5).

use crate::backend::BackendError;

/// Why a command line was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleError {
    /// Refused while parsing, before anything ran: `bad command name x (line 1 column 2)`.
    #[error("{message} (line {line} column {column})")]
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },
    /// Refused or failed while running: `no such item`, `input does not match any value of x`.
    #[error("{0}")]
    Failure(String),
    /// The backend (the daemon's REST API) refused the request.
    #[error("{0}")]
    Backend(BackendError),
}

impl From<BackendError> for ConsoleError {
    fn from(error: BackendError) -> Self {
        ConsoleError::Backend(error)
    }
}

impl ConsoleError {
    pub(crate) fn syntax(message: impl Into<String>, column: usize) -> Self {
        ConsoleError::Syntax {
            message: message.into(),
            line: 1,
            column,
        }
    }

    pub(crate) fn bad_command_name(word: &str, column: usize) -> Self {
        Self::syntax(format!("bad command name {word}"), column)
    }

    pub(crate) fn expected_end_of_command(column: usize) -> Self {
        Self::syntax("expected end of command", column)
    }

    pub(crate) fn syntax_error(column: usize) -> Self {
        Self::syntax("syntax error", column)
    }

    pub(crate) fn no_such_item() -> Self {
        ConsoleError::Failure("no such item".into())
    }

    pub(crate) fn no_match(argument: &str) -> Self {
        ConsoleError::Failure(format!("input does not match any value of {argument}"))
    }

    pub(crate) fn invalid_value(argument: &str) -> Self {
        ConsoleError::Failure(format!("invalid value for argument {argument}"))
    }

    pub(crate) fn missing(arguments: &[&str]) -> Self {
        ConsoleError::Failure(format!(
            "missing value(s) of argument(s) {}",
            arguments.join(", ")
        ))
    }
}
