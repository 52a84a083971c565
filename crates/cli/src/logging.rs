//! Logging: tracing to stderr, set by -v/-q and overridden by RUST_LOG.

use tracing_subscriber::EnvFilter;

/// What the flags ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Warnings by default; each -v one level more.
    Level(u8),
}

/// Installs the global subscriber (the binary's job, never the libraries').
pub(crate) fn init(verbosity: Verbosity) {
    let default = match verbosity {
        Verbosity::Quiet => "error",
        Verbosity::Level(0) => "warn",
        Verbosity::Level(1) => "info",
        Verbosity::Level(2) => "debug",
        Verbosity::Level(_) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
