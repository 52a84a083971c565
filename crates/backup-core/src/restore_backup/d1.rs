//! Restoring into a D1 database through D1's import API: the dump staged without its
//! transaction statements and checked against D1's statement limit before anything is uploaded.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use d1_export::{ImportEvent, ImportOptions, ImportSource};
use tokio_util::sync::CancellationToken;

use crate::config::AccountConfig;
use crate::engine::Engine;
use crate::restore::DumpStatements;

use super::{
    Confirm, D1_MAX_STATEMENT_BYTES, PlannedTarget, RestorePlan, RestoreReport, Result, dump_error,
    refuse, statement_too_large, wrong_target,
};
use crate::error::{Error, ErrorKind};

/// Fills in a D1 target: the account (the backup's, or the configured one named), the
/// database found by name or uuid through the list endpoint, its tables and size.
pub(super) async fn plan_d1(
    engine: &Engine,
    plan: &mut RestorePlan,
    database: &str,
    account: Option<&str>,
    confirm: Confirm,
) -> Result<()> {
    let wanted = account.unwrap_or(&plan.backup.account);
    let (index, target_account, client) = d1_account(engine, wanted)?;
    let account_id = target_account.account_id_or_empty();
    let listed = client.list_databases(account_id).await.map_err(|e| {
        Error::from(e).context(format_args!(
            "cannot list the databases of account {wanted} ({account_id})"
        ))
    })?;
    let Some(found) = listed
        .into_iter()
        .find(|d| d.name == database || d.uuid == database)
    else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "D1 database {database:?} does not exist in account {wanted} ({account_id}); create it first (`wrangler d1 create {database}`), or check the name against the databases the token can list"
            ),
        ));
    };
    let info = client.database_info(account_id, &found.uuid).await.ok();
    let num_tables = info.as_ref().and_then(|i| i.num_tables);
    plan.account_index = Some(index);
    explain_import(plan, &found.name, &found.uuid, num_tables, confirm);
    plan.target = PlannedTarget::D1 {
        account: target_account.name.clone(),
        account_id: account_id.to_owned(),
        database: found.name,
        uuid: found.uuid,
        num_tables,
        file_size: info.and_then(|i| i.file_size),
    };
    Ok(())
}

/// The configured account named `wanted`, with its index and its D1 client.
fn d1_account<'e>(
    engine: &'e Engine,
    wanted: &str,
) -> Result<(usize, &'e AccountConfig, &'e d1_export::D1Client)> {
    let accounts = &engine.config().accounts;
    let Some(index) = accounts.iter().position(|a| a.name == wanted) else {
        let known: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        return Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "account {wanted} is not a configured account; configured: {}",
                known.join(", ")
            ),
        ));
    };
    let Some(client) = &engine.clients()[index] else {
        return Err(Error::new(
            ErrorKind::NotConfigured,
            format!(
                "account {wanted} has no D1 API client (no token_env, or only local databases configured); name an account with D1 databases and a token"
            ),
        ));
    };
    Ok((index, &accounts[index], client))
}

/// What importing into `name` means, as the plan's notes, and the refusal an unconfirmed
/// import gets.
fn explain_import(
    plan: &mut RestorePlan,
    name: &str,
    uuid: &str,
    num_tables: Option<u64>,
    confirm: Confirm,
) {
    plan.notes.push(format!(
        "D1 database {name} serves no queries while the import runs; a failed import leaves it as it was"
    ));
    match num_tables {
        Some(0) => {}
        Some(n) => plan.notes.push(format!(
            "{name} already has {n} table(s): the dump's statements run into its current content, nothing is deleted first, and a CREATE TABLE of a name that exists fails the whole import"
        )),
        None => plan.notes.push(format!(
            "D1 did not report how many tables {name} has: if it has any, the dump's statements run into them, and a CREATE TABLE of a name that exists fails the whole import"
        )),
    }
    if plan.manifest.database.uuid.as_deref() == Some(uuid) {
        plan.notes
            .push(format!("{name} is the database this backup was taken from"));
    }
    if confirm == Confirm::No {
        plan.refusals.push(format!(
            "importing into D1 database {name} ({uuid}) changes a live database: it serves no queries during the import, and the dump's statements run into its current content (nothing is deleted first; if it already has a table the dump creates, the import fails and leaves it as it was); confirm the import to go ahead"
        ));
    }
}

/// Imports the plan's backup into its D1 database through D1's import API.
///
/// The dump is streamed from the sink, hashed on the way, decompressed and staged in the
/// request's scratch directory without its `BEGIN`/`COMMIT` statements (D1's import
/// rejects them). Nothing is uploaded unless the whole dump matches its manifest and every
/// statement is within [`D1_MAX_STATEMENT_BYTES`]. Cancellation before the upload finished
/// leaves the database untouched; once D1 began ingesting, it finishes (or fails) on its
/// own. The staged file is always removed.
pub(crate) async fn restore_to_d1(
    engine: &Engine,
    plan: &RestorePlan,
    cancel: &CancellationToken,
) -> Result<RestoreReport> {
    let PlannedTarget::D1 {
        uuid,
        account_id,
        database,
        ..
    } = &plan.target
    else {
        return Err(wrong_target("restore_to_d1", "a D1 database"));
    };
    refuse(plan)?;
    let client = plan
        .account_index
        .and_then(|i| engine.clients().get(i).cloned().flatten())
        .ok_or_else(|| wrong_target("restore_to_d1", "a D1 database of an account with a token"))?;
    let staged = plan.scratch_dir.join(format!(
        "d1-backup-import-{}-{}-{}.sql",
        std::process::id(),
        plan.backup.database,
        plan.backup.date
    ));
    let outcome = async {
        let (reader, tally) = super::stored_dump(engine, &plan.manifest, cancel).await?;
        let writing = staged.clone();
        let filtered = tokio::task::spawn_blocking(move || stage_for_d1(reader, &writing))
            .await
            .map_err(|e| Error::new(ErrorKind::LocalIo, format!("the staging task failed: {e}")));
        let mut report = super::settle(engine, &plan.manifest, cancel, &tally, filtered.and_then(|r| r))
            .await?;
        let mut options = ImportOptions::default();
        options.poll_interval =
            std::time::Duration::from_millis(engine.config().run.poll_interval_ms);
        let phase = AtomicU8::new(PREPARING);
        let events = |event: &ImportEvent| log_import(database, event, &phase);
        let source = ImportSource::File(staged.clone());
        let imported = tokio::select! {
            imported = client.import(account_id, uuid, &source, &options, &events) => imported,
            () = cancel.cancelled() => {
                return Err(Error::new(ErrorKind::Cancelled, cancelled(database, phase.load(Ordering::Relaxed))));
            }
        };
        let done = imported.map_err(|e| {
            Error::from(e).context(format_args!(
                "the import into D1 database {database} failed; D1 left it as it was"
            ))
        })?;
        report.num_queries = done.num_queries;
        report.final_bookmark = done.final_bookmark;
        Ok(report)
    }
    .await;
    let _ = std::fs::remove_file(&staged);
    outcome
}

/// How far an import got, for the message of a cancelled one: before the upload finished D1
/// has nothing to ingest; once the ingest request is sent, D1 may import without us.
const PREPARING: u8 = 0;
const UPLOADING: u8 = 1;
const INGESTING: u8 = 2;

fn cancelled(database: &str, phase: u8) -> String {
    match phase {
        PREPARING => format!(
            "cancelled before the upload; {database} was not changed (unless D1 already held this very file and began ingesting it)"
        ),
        UPLOADING => format!(
            "cancelled during the upload or as D1 was asked to ingest it: {database} is unchanged unless D1 began ingesting; check it before retrying"
        ),
        _ => format!(
            "cancelled after D1 began ingesting the dump into {database}: the import goes on (or fails) on D1's side; check the database before retrying"
        ),
    }
}

/// Logs the import's progress (the library's progress events describe backups) and records
/// its phase.
fn log_import(database: &str, event: &ImportEvent, phase: &AtomicU8) {
    match event {
        ImportEvent::Uploading { bytes } => {
            phase.store(UPLOADING, Ordering::Relaxed);
            tracing::info!("{database}: uploading the dump ({bytes} bytes)");
        }
        ImportEvent::AlreadyUploaded => {
            phase.store(INGESTING, Ordering::Relaxed);
            tracing::info!("{database}: D1 already has this file; ingesting");
        }
        ImportEvent::Ingesting { .. } => {
            phase.store(INGESTING, Ordering::Relaxed);
            tracing::info!("{database}: D1 is ingesting the dump");
        }
        ImportEvent::Message(message) => tracing::info!("{database}: {message}"),
        ImportEvent::Retrying { reason, delay } => {
            tracing::warn!("{database}: retrying in {delay:?}: {reason}");
        }
        other => tracing::debug!("{database}: {other:?}"),
    }
}

/// Writes the dump to `path` as D1's import takes it: transaction statements removed, every
/// statement checked against D1's limit, and every `CREATE TABLE` moved before the first row.
/// D1 enforces foreign keys during an import, and a dump keeps the tables' creation order,
/// in which a child table (and its rows) can come before its parent: its INSERTs would then
/// fail with `no such table` (`defer_foreign_keys` defers the checks, not the tables). The
/// `CREATE TABLE` statements are kept in memory (a schema is small), the rest goes to a second
/// file that follows them. Runs on a blocking thread; the caller removes the file afterwards.
fn stage_for_d1(reader: impl std::io::Read, path: &Path) -> Result<RestoreReport> {
    let mut rest_path = path.as_os_str().to_owned();
    rest_path.push(".rows");
    let rest_path = std::path::PathBuf::from(rest_path);
    let staged = stage_parts(reader, path, &rest_path);
    let _ = std::fs::remove_file(&rest_path);
    staged
}

fn stage_parts(reader: impl std::io::Read, path: &Path, rest_path: &Path) -> Result<RestoreReport> {
    let target_error = |source: std::io::Error| {
        Error::local_io(
            format!("cannot write the staged dump {}", path.display()),
            source,
        )
    };
    let file = std::fs::File::create(rest_path).map_err(target_error)?;
    let mut out = std::io::BufWriter::new(file);
    let mut tables: Vec<String> = Vec::new();
    let mut report = RestoreReport::default();
    let mut written = 0u64;
    let mut statements = DumpStatements::new(std::io::BufReader::new(reader)).without_transaction();
    for statement in statements.by_ref() {
        let (line, sql) = statement.map_err(dump_error)?;
        let table = table_of(&sql);
        if sql.len() > D1_MAX_STATEMENT_BYTES {
            return Err(statement_too_large(line, table.as_deref(), sql.len()));
        }
        if let Some(table) = &table {
            let rows = report.tables.entry(table.clone()).or_default();
            if is_insert(&sql) && !is_module_command(&sql, table) {
                *rows += 1;
            }
        }
        written += sql.len() as u64 + 1;
        report.statements += 1;
        if is_create_table(&sql) {
            tables.push(sql);
            continue;
        }
        out.write_all(sql.as_bytes()).map_err(target_error)?;
        out.write_all(b"\n").map_err(target_error)?;
    }
    report.stripped = statements.skipped();
    out.into_inner()
        .map_err(|e| target_error(e.into_error()))?
        .sync_all()
        .map_err(target_error)?;
    // The tables first, then everything else in dump order.
    let mut staged = std::io::BufWriter::new(std::fs::File::create(path).map_err(target_error)?);
    for sql in &tables {
        staged.write_all(sql.as_bytes()).map_err(target_error)?;
        staged.write_all(b"\n").map_err(target_error)?;
    }
    let mut rest = std::fs::File::open(rest_path).map_err(target_error)?;
    std::io::copy(&mut rest, &mut staged).map_err(target_error)?;
    staged
        .into_inner()
        .map_err(|e| target_error(e.into_error()))?
        .sync_all()
        .map_err(target_error)?;
    report.uploaded_bytes = Some(written);
    Ok(report)
}

/// `CREATE TABLE …` (not `CREATE VIRTUAL TABLE`: a virtual table is filled from tables whose
/// rows come first, and stays where the dump put it).
fn is_create_table(sql: &str) -> bool {
    let mut words = sql.split_whitespace();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"))
        && words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("TABLE"))
}

/// An FTS command written as an INSERT (`INSERT INTO "t" ("t") VALUES('rebuild')`, or a
/// setting `INSERT INTO "t" ("t",rank) VALUES('pgsz',…)`): its first column is the table's
/// own name. Not a row.
fn is_module_command(sql: &str, table: &str) -> bool {
    let head: String = sql.chars().take(512).collect();
    let Some(open) = head.find('(') else {
        return false;
    };
    let columns = head[open + 1..].trim_start();
    let quoted = crate::dump::quote_ident(table);
    [quoted.as_str(), table].iter().any(|name| {
        columns.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.starts_with(',') || rest.starts_with(')')
        })
    })
}

fn is_insert(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default();
    first.eq_ignore_ascii_case("INSERT") || first.eq_ignore_ascii_case("REPLACE")
}

/// The table an `INSERT` writes or a `CREATE TABLE` creates, unquoted.
fn table_of(sql: &str) -> Option<String> {
    let head: String = sql.chars().take(1024).collect();
    let upper = head.to_ascii_uppercase();
    let after = [
        "INSERT INTO ",
        "REPLACE INTO ",
        "INSERT OR REPLACE INTO ",
        "CREATE TABLE ",
    ]
    .iter()
    .find(|p| upper.trim_start().starts_with(*p))
    .map(|p| head.trim_start()[p.len()..].trim_start())?;
    let after = after
        .strip_prefix("IF NOT EXISTS ")
        .or_else(|| after.strip_prefix("if not exists "))
        .unwrap_or(after)
        .trim_start();
    let name = match after.chars().next()? {
        quote @ ('"' | '`' | '[') => {
            let close = if quote == '[' { ']' } else { quote };
            let rest = &after[1..];
            let mut name = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                if c == close {
                    if close != ']' && chars.peek() == Some(&close) {
                        chars.next();
                    } else {
                        break;
                    }
                }
                name.push(c);
            }
            name
        }
        _ => after
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_in_every_dump_form() {
        fn check(sql: &str, expected: Option<&str>) {
            assert_eq!(table_of(sql).as_deref(), expected, "{sql:?}");
        }
        check("INSERT INTO \"items\" (\"id\") VALUES(1);", Some("items"));
        check("INSERT INTO items VALUES(1);", Some("items"));
        check("INSERT INTO \"a\"\"b\" VALUES(1);", Some("a\"b"));
        check("CREATE TABLE [x y](a);", Some("x y"));
        check("CREATE TABLE IF NOT EXISTS t2 (a);", Some("t2"));
        check("PRAGMA defer_foreign_keys=TRUE;", None);
    }

    #[test]
    fn tables_come_first_and_module_commands_are_not_rows() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("staged.sql");
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
                    CREATE TABLE child (id INTEGER PRIMARY KEY, p REFERENCES parent(id));\n\
                    INSERT INTO \"child\" (\"id\",\"p\") VALUES(1,1);\n\
                    CREATE TABLE IF NOT EXISTS \"parent\" (id INTEGER PRIMARY KEY);\n\
                    INSERT INTO \"parent\" (\"id\") VALUES(1);\n\
                    CREATE VIRTUAL TABLE f USING fts5(v, content='child');\n\
                    INSERT INTO \"f\" (\"f\") VALUES('rebuild');\n\
                    INSERT INTO \"f\" (\"f\",rank) VALUES('pgsz',8000);";
        let report = stage_for_d1(dump.as_bytes(), &path).unwrap_or_else(|e| panic!("{e}"));
        let staged = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let order: Vec<String> = staged
            .lines()
            .map(|l| l.chars().take(20).collect())
            .collect();
        assert_eq!(
            order,
            [
                "CREATE TABLE child (",
                "CREATE TABLE IF NOT ",
                "PRAGMA defer_foreign",
                "INSERT INTO \"child\" ",
                "INSERT INTO \"parent\"",
                "CREATE VIRTUAL TABLE",
                "INSERT INTO \"f\" (\"f\"",
                "INSERT INTO \"f\" (\"f\"",
            ]
        );
        assert_eq!(report.statements, 8);
        assert_eq!(report.tables.get("child"), Some(&1));
        assert_eq!(report.tables.get("parent"), Some(&1));
        assert_eq!(
            report.tables.get("f").copied().unwrap_or(0),
            0,
            "{report:?}"
        );
        assert!(!dir.path().join("staged.sql.rows").exists());
    }
}
