//! Time Travel: a live D1 database taken back, in place, to the bookmark a backup recorded
//! (or to any bookmark), through D1's `POST …/time_travel/restore`.
//!
//! This is the exact path back to a backup's moment: it does not go through the dump, so
//! neither the export's defects (rounded integers, mangled text) nor D1's import limits apply.
//! It only reaches as far back as D1 keeps history (30 days on paid plans, 7 on free ones),
//! and it is destructive: every change after that moment is undone, although D1 keeps them,
//! and the bookmark it answers as the previous one undoes the restore.

use chrono::NaiveDate;
use d1_export::TimeTravelPoint;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::selector::Selector;

use super::{Confirm, RestoreSource};

/// The default Time Travel window, in days (`[cloudflare] time_travel_days`): D1 keeps 30 days
/// of history on paid plans, 7 on the free plan.
pub const DEFAULT_TIME_TRAVEL_DAYS: u32 = 30;

/// Which database to take back, and to when.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TimeTravelRequest {
    /// The database: `NAME` or `ACCOUNT/NAME`, matching exactly one configured D1 database.
    pub database: Selector,
    /// The backup whose bookmark to go back to (`None`: the newest complete backup).
    pub date: Option<NaiveDate>,
    /// A bookmark to go to instead of a backup's (e.g. the previous bookmark of an earlier
    /// Time Travel restore, to undo it).
    pub bookmark: Option<String>,
    /// Without [`Confirm::Yes`] the restore is refused: it changes the live database in place.
    pub confirm: Confirm,
}

impl TimeTravelRequest {
    /// Takes `database` back to its newest complete backup's bookmark (unconfirmed).
    pub fn new(database: Selector) -> Self {
        Self {
            database,
            date: None,
            bookmark: None,
            confirm: Confirm::No,
        }
    }
}

/// What a Time Travel restore would do, decided without changing anything.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TimeTravelPlan {
    /// The configured account's name.
    pub account: String,
    /// The Cloudflare account id.
    pub account_id: String,
    /// The database name.
    pub database: String,
    /// The live database's uuid (empty when it could not be found).
    pub uuid: String,
    /// The bookmark the database would be taken back to.
    pub bookmark: Option<String>,
    /// The backup the bookmark comes from (`None` when a bookmark was given).
    pub backup: Option<RestoreSource>,
    /// The Time Travel window the plan was checked against, in days.
    pub window_days: u32,
    /// Why the restore would be refused; empty when it would go ahead.
    pub refusals: Vec<String>,
    /// What the restore would do that the database's owner should know.
    pub notes: Vec<String>,
    #[serde(skip)]
    account_index: usize,
}

impl TimeTravelPlan {
    /// Whether the restore would go ahead (no refusal).
    pub fn allowed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// What a Time Travel restore did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TimeTravelReport {
    /// The database's bookmark after the restore.
    pub bookmark: String,
    /// Its bookmark before: going back to it undoes the restore.
    pub previous_bookmark: String,
    /// D1's message, when it sent one.
    pub message: Option<String>,
}

/// Decides a Time Travel restore: the database, the bookmark, and every reason to refuse.
pub(crate) async fn plan(engine: &Engine, request: &TimeTravelRequest) -> Result<TimeTravelPlan> {
    let (account, entry) = super::restore_selection(engine, &request.database)?;
    let account_index = engine
        .config()
        .accounts
        .iter()
        .position(|a| a.name == account.name)
        .unwrap_or_default();
    let window_days = engine
        .config()
        .cloudflare
        .time_travel_days
        .unwrap_or(DEFAULT_TIME_TRAVEL_DAYS);
    let mut plan = TimeTravelPlan {
        account: account.name.clone(),
        account_id: account.account_id_or_empty().to_owned(),
        database: entry.name.clone(),
        uuid: String::new(),
        bookmark: request.bookmark.clone(),
        backup: None,
        window_days,
        refusals: Vec::new(),
        notes: Vec::new(),
        account_index,
    };
    if entry.sqlite.is_some() {
        plan.refusals.push(format!(
            "{}/{} is a local SQLite database: Time Travel is D1's; restore its backup into SQLite instead",
            account.name, entry.name
        ));
        return Ok(plan);
    }
    let backed_up_uuid = if request.bookmark.is_none() {
        let manifest = super::restore_manifest(engine, account, &entry.name, request.date).await?;
        check_backup(engine, &mut plan, &manifest);
        plan.backup = Some(super::source_of(&account.name, &entry.name, &manifest));
        plan.bookmark.clone_from(&manifest.database.bookmark);
        manifest.database.uuid.clone()
    } else {
        None
    };
    find_live(
        engine,
        &mut plan,
        entry.id.as_deref(),
        backed_up_uuid.as_deref(),
    )
    .await?;
    plan.notes.push(format!(
        "{} is taken back in place: every change after that moment is undone (D1 keeps them, and the previous bookmark it answers undoes the restore). This is the exact path: it does not go through the dump, so the export's defects do not apply",
        plan.database
    ));
    if request.confirm == Confirm::No {
        plan.refusals.push(format!(
            "a Time Travel restore changes the live database {} in place; confirm it to go ahead",
            plan.database
        ));
    }
    Ok(plan)
}

/// Refuses a backup without a bookmark, or older than the Time Travel window.
fn check_backup(engine: &Engine, plan: &mut TimeTravelPlan, manifest: &crate::manifest::Manifest) {
    if manifest.database.bookmark.is_none() {
        plan.refusals.push(format!(
            "the backup of {} dated {} records no Time Travel bookmark (it was taken from a local database, or by a version that did not record one); restore its dump into D1 instead",
            plan.database, manifest.date
        ));
    }
    let age = engine.clock().now() - manifest.started_at;
    let window = chrono::Duration::days(i64::from(plan.window_days));
    if age > window {
        plan.refusals.push(format!(
            "the backup of {} dated {} was taken {} days ago, outside D1's Time Travel window of {} days (`[cloudflare] time_travel_days`; paid plans keep 30 days of history, free plans 7): D1 no longer has that moment; restore its dump into D1 instead",
            plan.database,
            manifest.date,
            age.num_days(),
            plan.window_days
        ));
    }
}

/// Finds the live database; refuses when the name now belongs to another database than the
/// one backed up (its history does not hold the backup's bookmark).
async fn find_live(
    engine: &Engine,
    plan: &mut TimeTravelPlan,
    configured_id: Option<&str>,
    backed_up_uuid: Option<&str>,
) -> Result<()> {
    let client = client(engine, plan)?;
    let listed = client.list_databases(&plan.account_id).await.map_err(|e| {
        Error::from(e).context(format_args!(
            "cannot list the databases of account {}",
            plan.account
        ))
    })?;
    let live = listed
        .into_iter()
        .find(|d| configured_id.map_or(d.name == plan.database, |id| d.uuid == id));
    let Some(live) = live else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "D1 database {} does not exist in account {} any more: Time Travel works on a live database; restore the dump into a new database instead",
                plan.database, plan.account
            ),
        ));
    };
    if let Some(backed_up) = backed_up_uuid.filter(|u| *u != live.uuid) {
        plan.refusals.push(format!(
            "D1 database {} is now {}, not the database backed up ({backed_up}): its history does not hold the backup's bookmark; restore the dump into D1 instead",
            plan.database, live.uuid
        ));
    }
    plan.uuid = live.uuid;
    Ok(())
}

fn client<'e>(engine: &'e Engine, plan: &TimeTravelPlan) -> Result<&'e d1_export::D1Client> {
    engine
        .clients()
        .get(plan.account_index)
        .and_then(Option::as_ref)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotConfigured,
                format!(
                    "account {} has no D1 API client (no token_env); Time Travel needs a token that can edit D1",
                    plan.account
                ),
            )
        })
}

/// Carries a Time Travel plan out.
pub(crate) async fn restore(engine: &Engine, plan: &TimeTravelPlan) -> Result<TimeTravelReport> {
    if !plan.allowed() {
        return Err(Error::new(ErrorKind::Refused, plan.refusals.join("; ")));
    }
    let Some(bookmark) = plan.bookmark.clone() else {
        return Err(Error::new(
            ErrorKind::Refused,
            "the plan has no bookmark to go back to",
        ));
    };
    let client = client(engine, plan)?;
    let done = client
        .time_travel_restore(
            &plan.account_id,
            &plan.uuid,
            TimeTravelPoint::Bookmark(bookmark.clone()),
        )
        .await
        .map_err(|e| {
            Error::from(e).context(format_args!(
                "the Time Travel restore of D1 database {} to bookmark {bookmark} failed",
                plan.database
            ))
        })?;
    tracing::info!(
        "{}: restored to bookmark {bookmark}; the previous bookmark {} undoes it",
        plan.database,
        done.previous_bookmark
    );
    Ok(TimeTravelReport {
        bookmark: done.bookmark,
        previous_bookmark: done.previous_bookmark,
        message: done.message,
    })
}
