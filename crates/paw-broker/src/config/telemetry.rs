//! Log setup for the `pawd` binary. Logs go to stderr so stdout carries only what scripts parse
//! (`listening on …`, the OpenAPI document).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::base::error::{BrokerError, Result};
use crate::config::LogFormat;

/// Installs the global subscriber. A second call is a no-op (tests may start several servers).
pub fn init(format: LogFormat, level: &str) -> Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| BrokerError::Config(format!("log level {level:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not for journald or a log file.
        .with_ansi(std::io::stderr().is_terminal());
    // Err only means a subscriber is installed already.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
