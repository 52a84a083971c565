//! The command line, as clap structs. They live only here and become library options at once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use d1_backup_core::Shard;
use d1_backup_core::chrono::NaiveDate;
use d1_backup_core::{ExportMode, Selector};

const AFTER_HELP: &str = "\
Exit codes:
  0    every database succeeded
  1    at least one database failed
  2    usage or configuration error (nothing was attempted)
  75   no database failed, but another run held a database's lease for the whole
       wait ([run] wait_for_lease_minutes): it is not backed up (status \"leased\")
  130  interrupted (SIGINT or SIGTERM)

Examples:
  d1-backup run --config d1-backup.toml
  d1-backup run --only ops-db --only rtopacks/rto-abs-db --json
  D1_BACKUP_CONFIG=/etc/d1-backup.toml d1-backup run --date 2026-11-30
  d1-backup prune --dry-run
  d1-backup list --only ops-db
  d1-backup status --json
  d1-backup run --metrics-file /var/lib/node_exporter/textfile/d1_backup.prom
  d1-backup config check";

/// Back up Cloudflare D1 databases into R2, any S3-compatible store, or a directory.
#[derive(Debug, Parser)]
#[command(name = "d1-backup", version, about, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The configuration file (TOML). Example: --config /etc/d1-backup.toml
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "D1_BACKUP_CONFIG",
        default_value = "d1-backup.toml",
        value_name = "FILE"
    )]
    pub(crate) config: PathBuf,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides. Example: -vv
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only errors on stderr. Example: -q
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// How log lines are written: text (colour only on a terminal, never with NO_COLOR) or
    /// json (one object per line, for log shippers). Example: --log-format json
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "D1_BACKUP_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub(crate) log_format: crate::logging::LogFormat,
}

impl GlobalArgs {
    /// The log level the flags ask for.
    pub(crate) fn verbosity(&self) -> crate::logging::Verbosity {
        if self.quiet {
            crate::logging::Verbosity::Quiet
        } else {
            crate::logging::Verbosity::Level(self.verbose)
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Back up the configured databases now.
    Run(RunArgs),
    /// Apply retention now, printing each keep/delete decision and its reason.
    Prune(PruneArgs),
    /// List the backups in the sink per account, database and date, with size, completeness
    /// (manifest present and matching) and compression.
    #[command(
        after_help = "Examples:\n  d1-backup list\n  d1-backup list --only ucca/ops-db --json"
    )]
    List(ListArgs),
    /// Prove backups by restoring them: size and SHA-256 against the manifest, then a restore
    /// into a scratch SQLite file with integrity and foreign-key checks and row counts.
    #[command(
        after_help = "Examples:\n  d1-backup verify\n  d1-backup verify --date 2026-11-30 --only ucca/ops-db --json\n  d1-backup verify --only ops-db --against-live"
    )]
    Verify(VerifyArgs),
    /// Restore one database's backup into a SQLite file or, through D1's import API, into a D1
    /// database; the dump's size and SHA-256 are checked against its manifest as it is read.
    #[command(
        after_help = "Restoring into D1 (--to-d1): the whole backup is read and checked first; nothing is uploaded when D1 would refuse any of it (names starting with _cf_ in any case, a statement over 100 KB that cannot be split: each is named; --exclude-table leaves a table out). Rows over 100 KB are rewritten into statements that fit and give the same row. The import runs in batches (--batch-mib): each batch is atomic, the whole import is not; a failed batch is named and --resume continues from it. A target that already has tables is refused unless --into-existing; --create makes a new database.\n\nTime Travel (--time-travel): takes the live D1 database back, in place, to the bookmark recorded in the backup's manifest (or --bookmark). This is the exact path: it does not go through the dump, so D1's export defects (rounded big integers, mangled text) do not apply to it. It reaches back as far as D1 keeps history: [cloudflare] time_travel_days, default 30 (free plans keep 7). The previous bookmark is printed with the command that undoes the restore.\n\nExit codes: 0 restored (or, with --dry-run, would restore), 1 failed, 2 usage error or refused (nothing changed), 130 interrupted.\n\nExamples:\n  d1-backup restore --database ops-db --to-sqlite ops-db.sqlite\n  d1-backup restore --database ucca/ops-db --date 2026-11-30 --to-sqlite ops-db.sqlite --force\n  d1-backup restore --database ops-db --to-d1 ops-db-restored --dry-run\n  d1-backup restore --database ops-db --to-d1 ops-db-drill --create --location weur --yes --json\n  d1-backup restore --database ops-db --to-d1 ops-db-restored --exclude-table _CF_upper --yes\n  d1-backup restore --database ops-db --to-d1 ops-db-restored --resume --yes\n  d1-backup restore --database ops-db --date 2026-12-01 --time-travel --dry-run\n  d1-backup restore --database ops-db --bookmark 00000085-0000024c-00004f6d-... --time-travel --yes"
    )]
    Restore(RestoreArgs),
    /// List the D1 databases each configured token can see, with size, marking which are
    /// configured, so a database nobody backs up gets noticed.
    #[command(after_help = "Examples:\n  d1-backup databases\n  d1-backup databases --json")]
    Databases(JsonArgs),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Tell whether every database's newest complete backup is fresh, from the sink's
    /// listings only (cheap enough to run every minute).
    #[command(
        after_help = "Exit codes: 0 every selected database has a fresh backup, 1 at least one is stale or has no backup (each is named, with the command that backs it up), 2 usage or configuration error.\n\nExamples:\n  d1-backup status\n  d1-backup status --max-age 30 --only ucca/ops-db\n  d1-backup status --json"
    )]
    Status(StatusArgs),
    /// Run the `[[schedules]]` of the config file until SIGTERM/SIGINT; with `[daemon]
    /// metrics_listen`, serve Prometheus metrics on GET /metrics and a health check on
    /// GET /healthz.
    #[command(
        after_help = "Examples:\n  d1-backup daemon --config /etc/d1-backup.toml\n  d1-backup daemon --grace 600\n  curl -s http://127.0.0.1:9187/metrics   # with [daemon] metrics_listen = \"127.0.0.1:9187\""
    )]
    Daemon(DaemonArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  d1-backup completions bash > /etc/bash_completion.d/d1-backup\n  d1-backup completions zsh > ~/.zfunc/_d1-backup"
    )]
    Completions(CompletionsArgs),
}

/// `d1-backup config …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the file, then check without exporting anything (an export blocks the
    /// database) that each token lists its databases, each configured database exists, and the
    /// sink is reachable and writable (a probe object is put, read back and deleted).
    #[command(
        after_help = "Examples:\n  d1-backup config check\n  d1-backup config check --config /etc/d1-backup.toml --json"
    )]
    Check(JsonArgs),
}

/// Commands whose only option is `--json`.
#[derive(Debug, Args)]
pub(crate) struct JsonArgs {
    /// Print the result as JSON on stdout. Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

/// `d1-backup list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this database: NAME or ACCOUNT/NAME. Repeatable. Example: --only ops-db
    #[arg(long, value_name = "[ACCOUNT/]NAME")]
    pub(crate) only: Vec<Selector>,
    /// Read the backups of this `[[replicas]]` entry instead of the main sink: its index
    /// from 0 in the config, or its name. Example: --replica offsite
    #[arg(long, value_name = "N|NAME")]
    pub(crate) replica: Option<String>,
    /// Print the list as JSON on stdout. Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

/// `d1-backup verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Verify the backup of this date, YYYY-MM-DD (default: each database's newest complete
    /// backup). Example: --date 2026-11-30
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) date: Option<NaiveDate>,
    /// Only this database: NAME or ACCOUNT/NAME. Repeatable. Example: --only ops-db
    #[arg(long, value_name = "[ACCOUNT/]NAME")]
    pub(crate) only: Vec<Selector>,
    /// Also compare every table with the live database, row by row: through D1's query API
    /// (it reads every row) or the local source file. Differences name the table, column and
    /// row; where the live database has changed since the backup they are reported, not
    /// failed. Example: --against-live
    #[arg(long)]
    pub(crate) against_live: bool,
    /// The age identity file (AGE-SECRET-KEY-1…, as `age-keygen -o key.txt` writes it) that
    /// decrypts encrypted backups, instead of `[encryption] identity_file`. Example:
    /// --identity ~/keys/d1-backup.txt
    #[arg(long, value_name = "FILE")]
    pub(crate) identity: Option<PathBuf>,
    /// Read the backups of this `[[replicas]]` entry instead of the main sink: its index
    /// from 0 in the config, or its name. Example: --replica offsite
    #[arg(long, value_name = "N|NAME")]
    pub(crate) replica: Option<String>,
    /// Print the results as JSON on stdout. Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

/// `d1-backup daemon`.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// Seconds a running backup may take to finish after SIGTERM/SIGINT before it is
    /// cancelled (its uploads are aborted; nothing partial is left). Example: --grace 600
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) grace: u64,
}

/// `d1-backup completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell. Example: bash
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// `d1-backup run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  d1-backup run --config d1-backup.toml\n  d1-backup run --only ucca/ops-db --date 2026-11-30 --json"
)]
#[allow(clippy::struct_excessive_bools)] // Independent command-line switches, not a state.
pub(crate) struct RunArgs {
    /// Back up only this database: NAME, ACCOUNT/NAME when names repeat across accounts, or
    /// ACCOUNT/* for every database of an account. Repeatable. Example: --only ops-db --only
    /// 'rtopacks/*'
    #[arg(long, value_name = "[ACCOUNT/]NAME")]
    pub(crate) only: Vec<Selector>,
    /// Back up only shard I of N (1-based) of the selected databases: a deterministic, stable
    /// share (by a hash of ACCOUNT/NAME), using 1/N of each token's request budget, so N
    /// machines or the pods of a Kubernetes Indexed Job (--shard $((JOB_COMPLETION_INDEX+1))/N)
    /// back up every database exactly once within Cloudflare's limit. Example: --shard 2/3
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<Shard>,
    /// The date folder to write, YYYY-MM-DD (default: today in UTC). Example: --date 2026-11-30
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) date: Option<NaiveDate>,
    /// Print the run report as JSON on stdout (logs stay on stderr). Example: --json
    #[arg(long)]
    pub(crate) json: bool,
    /// Back up again databases that already have a complete backup for the date (the new
    /// dump replaces the old one only once complete). Example: --force
    #[arg(long)]
    pub(crate) force: bool,
    /// Verify each backup this run makes, as `d1-backup verify` does, before retention and the
    /// heartbeat; one that does not verify fails its database. Example: --verify
    #[arg(long)]
    pub(crate) verify: bool,
    /// With --verify, also compare every table with the live database (see `verify
    /// --against-live`). Example: --verify --against-live
    #[arg(long, requires = "verify")]
    pub(crate) against_live: bool,
    /// With --verify (or `[run] verify`): the age identity file that decrypts the backups the
    /// run makes when `[encryption]` is set, instead of `[encryption] identity_file`.
    /// Backing up alone never needs it. Example: --verify --identity key.txt
    #[arg(long, value_name = "FILE")]
    pub(crate) identity: Option<PathBuf>,
    /// How D1 databases are read in this run, overriding `[run] export` and each database's
    /// `export`: d1 (D1's export endpoint, which blocks the database while it runs), online
    /// (the query API, page by page, exact values, no export) or auto (d1 up to `[run]
    /// online_above_mib`, online above). Local SQLite databases ignore it. Example:
    /// --export online
    #[arg(long, value_name = "MODE", value_parser = parse_export_mode)]
    pub(crate) export: Option<ExportMode>,
    /// After the run, write Prometheus metrics (text format) to this file, atomically (a
    /// temporary file beside it, renamed), for node_exporter's textfile collector; overrides
    /// `[run] metrics_file`. Example: --metrics-file /var/lib/node_exporter/textfile/d1_backup.prom
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
}

/// `d1-backup status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// A newest backup older than this many hours is stale, for every database (0: every
    /// database is stale). Default: from [[schedules]] (stale 2 hours after the first
    /// scheduled time following the newest backup), else 26. Example: --max-age 30
    #[arg(long, value_name = "HOURS", value_parser = parse_hours)]
    pub(crate) max_age: Option<std::time::Duration>,
    /// Only this database: NAME, ACCOUNT/NAME or ACCOUNT/*. Repeatable. Example: --only ops-db
    #[arg(long, value_name = "[ACCOUNT/]NAME")]
    pub(crate) only: Vec<Selector>,
    /// Print the result as JSON on stdout (the contract is in the README). Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

/// A number of hours, zero or more (fractions allowed).
fn parse_hours(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|h| h.is_finite() && *h >= 0.0 && *h <= 24.0 * 366.0 * 100.0)
        .map(|h| std::time::Duration::from_secs_f64(h * 3600.0))
        .ok_or_else(|| format!("{text:?} is not a number of hours (0 or more), e.g. 26 or 1.5"))
}

/// `d1`, `online` or `auto`.
fn parse_export_mode(text: &str) -> Result<ExportMode, String> {
    match text {
        "d1" => Ok(ExportMode::D1),
        "online" => Ok(ExportMode::Online),
        "auto" => Ok(ExportMode::Auto),
        other => Err(format!(
            "{other:?} is not an export mode: use d1, online or auto"
        )),
    }
}

/// `d1-backup prune`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  d1-backup prune --dry-run\n  d1-backup prune --date 2026-11-30 --only ucca/ops-db --json"
)]
pub(crate) struct PruneArgs {
    /// Decide and print, delete nothing. Example: --dry-run
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The day retention counts from, YYYY-MM-DD (default: today in UTC). Example: --date 2026-11-30
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) date: Option<NaiveDate>,
    /// Prune only this database: NAME or ACCOUNT/NAME. Repeatable. Example: --only ops-db
    #[arg(long, value_name = "[ACCOUNT/]NAME")]
    pub(crate) only: Vec<Selector>,
    /// Print the prune report as JSON on stdout. Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

/// `d1-backup restore`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // Independent flags; they become library enums at once.
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_sqlite", "to_d1", "time_travel"])))]
pub(crate) struct RestoreArgs {
    /// The database whose backup is restored: NAME, or ACCOUNT/NAME when names repeat across
    /// accounts. Example: --database ucca/ops-db
    #[arg(long, value_name = "[ACCOUNT/]NAME")]
    pub(crate) database: Selector,
    /// Restore the backup of this date, YYYY-MM-DD (default: the newest complete backup).
    /// Example: --date 2026-11-30
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date, conflicts_with = "bookmark")]
    pub(crate) date: Option<NaiveDate>,
    /// Restore into this SQLite file. A non-empty file is refused unless --force. Example:
    /// --to-sqlite ops-db.sqlite
    #[arg(long, value_name = "PATH")]
    pub(crate) to_sqlite: Option<PathBuf>,
    /// Import into this D1 database (name or uuid) through D1's import API; needs --yes. The
    /// database serves no queries while the import runs, and the dump's statements run into
    /// its current content (nothing is deleted first; a failed import leaves it as it was).
    /// Example: --to-d1 ops-db-restored
    #[arg(long, value_name = "NAME|ID")]
    pub(crate) to_d1: Option<String>,
    /// With --to-d1: the configured account the target database is in (default: the
    /// backup's account). Example: --account staging
    // `conflicts_with` the other target rather than `requires`: clap lets any member of a
    // required group satisfy `requires` (clap-rs/clap#4707).
    #[arg(long, value_name = "ACCOUNT", conflicts_with_all = ["to_sqlite", "time_travel"])]
    pub(crate) account: Option<String>,
    /// With --to-d1: create the target database first (refused when the name exists), in the
    /// account given by --account; the usual way to run a restore drill. Example: --create
    #[arg(long, conflicts_with_all = ["to_sqlite", "time_travel", "resume", "into_existing"])]
    pub(crate) create: bool,
    /// With --create: D1's location hint for the new database (wnam, enam, weur, eeur, apac,
    /// oc). Example: --location weur
    #[arg(long, value_name = "HINT", requires = "create")]
    pub(crate) location: Option<String>,
    /// With --to-d1: leave this table out, with its rows, indexes, triggers and
    /// sqlite_sequence row (also takes the name of an index, trigger or view); repeatable.
    /// Example: --exclude-table _CF_upper
    #[arg(long, value_name = "NAME", conflicts_with_all = ["to_sqlite", "time_travel"])]
    pub(crate) exclude_table: Vec<String>,
    /// With --to-d1: the most MiB of SQL in one import batch (each batch is one atomic import).
    /// Example: --batch-mib 16
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096), conflicts_with_all = ["to_sqlite", "time_travel"])]
    pub(crate) batch_mib: u64,
    /// With --to-d1: the most statements in one import batch. Example: --batch-statements 50000
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..), conflicts_with_all = ["to_sqlite", "time_travel"])]
    pub(crate) batch_statements: u64,
    /// With --to-d1: continue an import that failed or was interrupted, from the batch that did
    /// not complete (same backup, target and batch options). Example: --resume
    #[arg(long, conflicts_with_all = ["to_sqlite", "time_travel", "into_existing"])]
    pub(crate) resume: bool,
    /// With --to-d1: import into a database that already has tables (its content stays,
    /// nothing is deleted first). Example: --into-existing
    #[arg(long, conflicts_with_all = ["to_sqlite", "time_travel"])]
    pub(crate) into_existing: bool,
    /// Take the live D1 database back, in place, to the Time Travel bookmark of the backup
    /// (of --date, or the newest), or to --bookmark; needs --yes. Exact: it does not go
    /// through the dump, so D1's export defects do not apply. Example: --time-travel
    #[arg(long)]
    pub(crate) time_travel: bool,
    /// With --time-travel: go to this bookmark instead of the backup's (e.g. the previous
    /// bookmark a Time Travel restore printed, to undo it). Example: --bookmark 00000085-…
    #[arg(long, value_name = "BOOKMARK", requires = "time_travel")]
    pub(crate) bookmark: Option<String>,
    /// With --to-sqlite: replace a non-empty file (the restored file takes its place only
    /// once the restore succeeded). Example: --force
    #[arg(long, conflicts_with_all = ["to_d1", "time_travel"])]
    pub(crate) force: bool,
    /// With --to-d1 or --time-travel: go ahead and change the live database. Example: --yes
    #[arg(long, conflicts_with = "to_sqlite")]
    pub(crate) yes: bool,
    /// The age identity file (AGE-SECRET-KEY-1…, as `age-keygen -o key.txt` writes it) that
    /// decrypts encrypted backups, instead of `[encryption] identity_file`. Example:
    /// --identity ~/keys/d1-backup.txt
    #[arg(long, value_name = "FILE")]
    pub(crate) identity: Option<PathBuf>,
    /// Read the backups of this `[[replicas]]` entry instead of the main sink: its index
    /// from 0 in the config, or its name. Example: --replica offsite
    #[arg(long, value_name = "N|NAME")]
    pub(crate) replica: Option<String>,
    /// Print the plan (which backup, which target, what would be refused) and change
    /// nothing. Example: --dry-run
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the plan and the result as JSON on stdout. Example: --json
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_date(value: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("{value:?} is not a date: write YYYY-MM-DD, e.g. 2026-11-30"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
