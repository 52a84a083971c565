//! `d1-backup run`: parse → convert → call → render → exit code.

use std::path::Path;

use d1_backup_core::chrono::Utc;
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    AgeIdentity, Config, ConfigError, Engine, Force, RunOptions, Secrets, Shard, VerifyOptions,
};

use std::io::IsTerminal;

use d1_backup_core::Progress;

use crate::bars::Bars;
use crate::cli::{GlobalArgs, RunArgs};
use crate::exit;
use crate::processes::SystemProcesses;
use crate::render::{self, LogProgress};

pub(crate) async fn run(global: &GlobalArgs, args: RunArgs) -> u8 {
    let engine = match load_sharded(&global.config, args.shard, args.identity.as_deref()) {
        Ok(engine) => engine,
        Err(code) => return code,
    };
    let date = args.date.unwrap_or_else(|| Utc::now().date_naive());
    let force = if args.force { Force::Yes } else { Force::No };
    let mut options = RunOptions::new(date).only(args.only).force(force);
    if let Some(mode) = args.export {
        options = options.export(mode);
    }
    if args.verify {
        options = options
            .verify(VerifyOptions::new(std::env::temp_dir()).against_live(args.against_live));
    }
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    // Bars only for a person watching: not when scripted (--json, -q) or redirected.
    let bars = (!args.json && !global.quiet && std::io::stderr().is_terminal()).then(Bars::new);
    let progress: &dyn Progress = match &bars {
        Some(bars) => bars,
        None => &LogProgress,
    };
    let report = match engine.run(&options, progress, &cancel).await {
        Ok(report) => report,
        Err(error) => {
            render::error(&error, render::command_hint(&error));
            return exit::USAGE;
        }
    };
    if !global.quiet {
        render::summary(&report, &engine.sink().describe());
        if let Some(prune) = &report.prune {
            render::prune_summary(prune, render::Detail::Deletions);
        }
        render::heartbeat(&report.heartbeat);
    }
    render::notifications(&report.notifications);
    if let Some(path) = args
        .metrics_file
        .as_deref()
        .or(engine.config().run.metrics_file.as_deref())
    {
        write_metrics(&engine, &options.only, &report, path).await;
    }
    render::run_hint(&report);
    if args.json {
        render::json(&report);
    }
    exit_code(&report)
}

/// Writes the run's metrics, with each database's last success taken from the sink's
/// listing (so a database this run did not back up still shows its newest backup). A
/// failure is reported and leaves the exit code alone: the backups are what it says.
async fn write_metrics(
    engine: &Engine,
    only: &[d1_backup_core::Selector],
    report: &d1_backup_core::RunReport,
    path: &Path,
) {
    let mut metrics = d1_backup_core::Metrics::new();
    match engine
        .status(&d1_backup_core::StatusOptions::new().only(only.to_vec()))
        .await
    {
        Ok(status) => metrics.seed(&status),
        Err(error) => tracing::warn!(
            "metrics: cannot list the sink for each database's last success, so only this run's are written: {error}"
        ),
    }
    metrics.record_run(report);
    if let Err(error) = metrics.write_file(path).await {
        render::error(
            &error,
            "check that the folder exists and is writable ([run] metrics_file or --metrics-file)",
        );
    }
}

/// 0 only when every selected database has its backup for the date.
pub(crate) fn exit_code(report: &d1_backup_core::RunReport) -> u8 {
    if report.interrupted {
        exit::INTERRUPTED
    } else if !report.succeeded() {
        exit::FAILED
    } else if report.complete() {
        exit::OK
    } else {
        exit::LEASED
    }
}

/// Loads the file, reads the secrets it names from the environment, builds the engine.
/// Every failure here is a usage or configuration error, found before any network call.
pub(crate) fn load_engine(path: &Path) -> Result<Engine, u8> {
    load_sharded(path, None, None)
}

/// [`load_engine`] with the age identity of `--identity FILE`, when given.
pub(crate) fn load_engine_with_identity(
    path: &Path,
    identity: Option<&Path>,
) -> Result<Engine, u8> {
    load_sharded(path, None, identity)
}

/// [`load_engine`] for one shard of a run (`run --shard I/N`), with `--identity`.
fn load_sharded(path: &Path, shard: Option<Shard>, identity: Option<&Path>) -> Result<Engine, u8> {
    let config = Config::load(path).map_err(|error| {
        let unreadable = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<ConfigError>())
            .is_some_and(|detail| matches!(detail, ConfigError::Read { .. }));
        let hint = if unreadable {
            "pass an existing file with --config"
        } else {
            "fix the file and run `d1-backup run` again"
        };
        render::error(&error, hint);
        exit::USAGE
    })?;
    for (field, why) in config.ignored_fields() {
        tracing::warn!("{}: {field} is {why}; it is ignored", path.display());
    }
    let secrets =
        Secrets::resolve(&config, path, |name| std::env::var(name).ok()).map_err(|error| {
            render::error(
                &error,
                "export the variables named above (the file names them; it never holds secrets)",
            );
            exit::USAGE
        })?;
    let mut builder = Engine::builder(config, secrets)
        .scratch_dir(std::env::temp_dir())
        .processes(std::sync::Arc::new(SystemProcesses::new()));
    if let Some(shard) = shard {
        builder = builder.shard(shard);
    }
    if let Some(file) = identity {
        let identity = AgeIdentity::from_file(file).map_err(|error| {
            render::error(
                &error,
                "pass the identity file age-keygen wrote (--identity key.txt); it holds AGE-SECRET-KEY-1… lines",
            );
            exit::USAGE
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|error| {
        render::error(
            &error,
            "check the [sink] and [cloudflare] sections of the config file",
        );
        exit::USAGE
    })
}

/// The engine reading `--replica N|NAME` instead of the main sink, when given.
pub(crate) fn on_replica(engine: Engine, replica: Option<&str>) -> Result<Engine, u8> {
    let Some(which) = replica else {
        return Ok(engine);
    };
    engine.on_replica(which).map_err(|error| {
        render::error(
            &error,
            "pass --replica the index (from 0) or the name of a [[replicas]] entry of the config",
        );
        exit::USAGE
    })
}

/// Cancels the run on SIGINT or SIGTERM: running uploads are aborted, nothing partial stays.
pub(crate) async fn cancel_on_signal(cancel: CancellationToken) {
    wait_for_signal().await;
    tracing::warn!("interrupted: stopping; unfinished uploads are aborted");
    cancel.cancel();
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
