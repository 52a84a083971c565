//! Logging: tracing to stderr, set by -v/-q and overridden by RUST_LOG; colour only on a
//! terminal and never with `NO_COLOR`; plain text or one JSON object per line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// What the flags ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Warnings by default; each -v one level more.
    Level(u8),
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    // Plain `//` comments: doc comments here would become per-value help and switch every
    // `--help` to clap's long layout.
    // One human-readable line per event.
    #[default]
    Text,
    // One JSON object per line (`timestamp`, `level`, `fields.message`), for log shippers.
    Json,
}

/// Whether log lines may carry ANSI colour: only when stderr is a terminal and `NO_COLOR` is
/// unset or empty (<https://no-color.org>). A systemd journal, a Kubernetes log or
/// `2>run.log` gets plain text.
pub(crate) fn colour(no_color: Option<&std::ffi::OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Installs the global subscriber (the binary's job, never the libraries').
pub(crate) fn init(verbosity: Verbosity, format: LogFormat) {
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
    let ansi = colour(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let check = |no_color: Option<&str>, terminal: bool, expected: bool| {
            assert_eq!(
                colour(no_color.map(OsStr::new), terminal),
                expected,
                "NO_COLOR={no_color:?} terminal={terminal}"
            );
        };
        check(None, true, true);
        check(Some(""), true, true);
        check(Some("1"), true, false);
        check(None, false, false);
        check(Some("1"), false, false);
    }
}
