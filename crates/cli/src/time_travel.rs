//! `d1-backup restore --time-travel`: plan → (refuse | dry run | restore) → the previous
//! bookmark and the command that undoes it.

use std::fmt::Write as _;

use d1_backup_core::{Confirm, Engine, TimeTravelPlan, TimeTravelReport, TimeTravelRequest};

use crate::cli::{GlobalArgs, RestoreArgs};
use crate::exit;
use crate::render;
use crate::restore::shell_word;

pub(crate) async fn time_travel(global: &GlobalArgs, engine: &Engine, args: &RestoreArgs) -> u8 {
    let mut request = TimeTravelRequest::new(args.database.clone());
    request.date = args.date;
    request.bookmark.clone_from(&args.bookmark);
    request.confirm = if args.yes { Confirm::Yes } else { Confirm::No };
    let plan = match engine.time_travel_plan(&request).await {
        Ok(plan) => plan,
        Err(error) => return crate::restore::failed(&error),
    };
    if !global.quiet {
        eprint!("{}", describe(&plan));
    }
    if args.dry_run || !plan.allowed() {
        let refusal = (!plan.allowed()).then(|| plan.refusals.join("; "));
        if args.json {
            render::json(&output(
                global,
                &plan,
                args.dry_run,
                None,
                refusal.as_deref(),
            ));
        }
        if args.dry_run {
            if !global.quiet {
                eprintln!("dry run: nothing was changed");
            }
        } else if let Some(refusal) = &refusal {
            eprintln!(
                "error: Time Travel restore refused: {refusal}\nhint: nothing was changed; --yes confirms, --dry-run shows the plan, --to-d1 NAME --create restores the dump into a new database instead"
            );
        }
        return if plan.allowed() {
            exit::OK
        } else {
            exit::USAGE
        };
    }
    let restored = engine.time_travel(&plan).await;
    if args.json {
        let error = restored.as_ref().err().map(ToString::to_string);
        render::json(&output(
            global,
            &plan,
            false,
            restored.as_ref().ok(),
            error.as_deref(),
        ));
    }
    match restored {
        Ok(report) => {
            if !global.quiet {
                eprintln!(
                    "restored {}/{} to bookmark {}; its bookmark now is {}\nprevious bookmark {}\nundo:    {}",
                    plan.account,
                    plan.database,
                    plan.bookmark.as_deref().unwrap_or_default(),
                    report.bookmark,
                    report.previous_bookmark,
                    undo(global, &plan, &report)
                );
            }
            exit::OK
        }
        Err(error) => crate::restore::failed(&error),
    }
}

/// The command that takes the database back to where it was before the restore.
fn undo(global: &GlobalArgs, plan: &TimeTravelPlan, report: &TimeTravelReport) -> String {
    let config = global.config.to_string_lossy();
    let config = if config == "d1-backup.toml" {
        String::new()
    } else {
        format!(" --config {}", shell_word(&config))
    };
    format!(
        "d1-backup{config} restore --database {} --bookmark {} --time-travel --yes",
        shell_word(&format!("{}/{}", plan.account, plan.database)),
        shell_word(&report.previous_bookmark)
    )
}

fn output(
    global: &GlobalArgs,
    plan: &TimeTravelPlan,
    dry_run: bool,
    restored: Option<&TimeTravelReport>,
    error: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "ok": error.is_none() && plan.allowed(),
        "dry_run": dry_run,
        "time_travel": plan,
        "restored": restored,
        "previous_bookmark": restored.map(|r| &r.previous_bookmark),
        "undo": restored.map(|r| undo(global, plan, r)),
        "error": error,
    })
}

fn describe(plan: &TimeTravelPlan) -> String {
    let mut out = format!(
        "database {}/{} ({})\n",
        plan.account,
        plan.database,
        if plan.uuid.is_empty() {
            "?"
        } else {
            &plan.uuid
        }
    );
    match &plan.backup {
        Some(b) => {
            let _ = writeln!(
                out,
                "backup   {}  {}  bookmark {}",
                b.date,
                b.key,
                b.bookmark.as_deref().unwrap_or("none")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "bookmark {}",
                plan.bookmark.as_deref().unwrap_or("none")
            );
        }
    }
    let _ = writeln!(
        out,
        "window   {} day(s) of Time Travel history ([cloudflare] time_travel_days)",
        plan.window_days
    );
    for note in &plan.notes {
        let _ = writeln!(out, "note     {note}");
    }
    for refusal in &plan.refusals {
        let _ = writeln!(out, "REFUSED  {refusal}");
    }
    out
}
