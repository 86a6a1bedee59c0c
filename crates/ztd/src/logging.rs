//! Where ztd's log goes and how it looks: plain text lines on stderr (colour only on a
//! terminal, no timestamps under journald, which stamps lines itself) or one JSON object per
//! line for collectors. The filter can be replaced while running (SIGHUP re-reads
//! `local.conf`).
use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// The level used when neither the command line, `RUST_LOG` nor `local.conf` gives one.
pub const DEFAULT_LEVEL: &str = "info";

/// How each log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (time, level, target, message and fields).
    Json,
}

/// A checked `tracing` filter directive such as `info` or `info,ztd::controller=debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel(String);

impl LogLevel {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    fn filter(&self) -> EnvFilter {
        // Checked by `FromStr`, so this cannot fail; fall back rather than panic regardless.
        EnvFilter::try_new(&self.0).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LEVEL))
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<LogLevel, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty log level (expected e.g. info, debug or info,ztd=debug)".into());
        }
        // A bare word is a target to `EnvFilter` ("infoo" would quietly log everything of a
        // target of that name): outside `target=level`, only level names are taken.
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        if let Some(word) = text.split(',').map(str::trim).find(|part| {
            !part.contains('=') && !LEVELS.contains(&part.to_ascii_lowercase().as_str())
        }) {
            return Err(format!(
                "invalid log level {word:?}: expected one of {} or TARGET=LEVEL",
                LEVELS.join(", ")
            ));
        }
        EnvFilter::try_new(text)
            .map(|_| LogLevel(text.to_string()))
            .map_err(|e| format!("invalid log level {text:?}: {e}"))
    }
}

impl<'de> serde::Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<LogLevel, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Replaces the running filter (after SIGHUP).
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    pub fn set_level(&self, level: &LogLevel) -> Result<(), String> {
        self.handle
            .reload(level.filter())
            .map_err(|e| format!("cannot change the log level: {e}"))
    }
}

/// Installs the global subscriber writing to stderr.
pub fn init(format: LogFormat, level: &LogLevel) -> LogControl {
    let (filter, handle) = reload::Layer::new(level.filter());
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let colour = std::io::stderr().is_terminal() && !under_journald;
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text if under_journald => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    LogControl { handle }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_are_checked_directives() {
        for good in ["info", "debug", "info,ztd::controller=debug", " warn "] {
            assert!(good.parse::<LogLevel>().is_ok(), "{good}");
        }
        assert_eq!("warn ".parse::<LogLevel>().unwrap().as_str(), "warn");
        for bad in ["", "loud", "info,ztd=[[["] {
            assert!(bad.parse::<LogLevel>().is_err(), "{bad:?}");
        }
    }
}
