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
    let ours = match verbosity {
        Verbosity::Quiet => "error",
        Verbosity::Level(0) => "warn",
        Verbosity::Level(1) => "info",
        Verbosity::Level(2) => "debug",
        Verbosity::Level(_) => "trace",
    };
    // -v raises our crates only: HTTP libraries at debug/trace would log request URIs, and a
    // signed URL's query is a credential. RUST_LOG remains the operator's explicit choice.
    let default = format!(
        "{},d1_backup={ours},d1_export={ours},r2_sink={ours},d1_backup_core={ours}",
        if ours == "error" { "error" } else { "warn" }
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
