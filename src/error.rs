//! Errors grouped by what the caller should do about them, and the process exit codes they map to.
//!
//! The exit codes are part of the public interface (cron jobs and Airflow tasks branch on them);
//! they are documented in the README and must not change meaning.
//!
//! A leaf: it imports nothing from the crate. Each module that has its own error type maps it
//! to these groups beside its definition (e.g. `From<StorageError>` in `storage`), so the lower
//! modules never depend on the error types of the higher ones.

use std::fmt;

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything selected was read and committed (or `check` found everything accessible).
    Success = 0,
    /// An unexpected internal failure (a bug, or an API answer we cannot interpret).
    Fatal = 1,
    /// Bad configuration or usage: fix the config file, environment or flags.
    Config = 2,
    /// Partial: some streams were skipped (missing scope) or failed; the others committed.
    Partial = 3,
    /// Authentication failed: the client id/secret/token were refused.
    Auth = 4,
    /// The destination (bucket, folder) cannot be read or written.
    Destination = 5,
    /// Another run holds the destination's state; nothing was changed.
    Conflict = 6,
    /// Greenhouse's token endpoint was unreachable or answered 5xx: retry later.
    TokenUnavailable = 7,
    /// Stopped by SIGINT/SIGTERM; committed streams stay committed.
    Interrupted = 130,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A failure that ends a command. Each variant names what the user should do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fix the configuration (file, environment variables, flags) and run again.
    #[error("configuration error: {0}")]
    Config(String),
    /// Fix the credentials (or their grants) and run again.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Fix the destination (URL, credentials, permissions, reachability) and run again.
    #[error("destination error: {0}")]
    Destination(String),
    /// Wait for the other run to finish, or remove its stale lease as the message says.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Greenhouse's token endpoint is unavailable; retry later (nothing is wrong with the setup).
    #[error("Greenhouse's token endpoint is unavailable: {0}")]
    TokenUnavailable(String),
    /// Interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
    /// Unexpected; report it.
    #[error("{0}")]
    Fatal(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::Config,
            Error::Auth(_) => ExitCode::Auth,
            Error::Destination(_) => ExitCode::Destination,
            Error::Conflict(_) => ExitCode::Conflict,
            Error::TokenUnavailable(_) => ExitCode::TokenUnavailable,
            Error::Interrupted => ExitCode::Interrupted,
            Error::Fatal(_) => ExitCode::Fatal,
        }
    }

    pub fn config(msg: impl fmt::Display) -> Self {
        Error::Config(msg.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
