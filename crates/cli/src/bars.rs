//! Progress bars on a terminal: one line per database, a spinner with the elapsed time and
//! the server's latest message while D1 exports, then bytes, rate and ETA (when the size is
//! known) while the dump streams into the sink.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use d1_backup_core::d1_export::ExportEvent;
use d1_backup_core::{EventKind, Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws one bar per database on stderr.
pub(crate) struct Bars {
    multi: MultiProgress,
    /// The bar of each database, by `account/name`; created at its first event.
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub(crate) fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, who: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(PoisonError::into_inner);
        bars.entry(who.to_owned())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style());
                bar.set_prefix(who.to_owned());
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            })
            .clone()
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:32} exporting {elapsed:>6}  {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bytes_style(total_known: bool) -> ProgressStyle {
    let template = if total_known {
        "{spinner} {prefix:32} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} ETA {eta:>4} {wide_bar}"
    } else {
        "{spinner} {prefix:32} {bytes:>10} {bytes_per_sec:>12} {elapsed:>6}  {wide_msg}"
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for Bars {
    fn event(&self, event: &ProgressEvent<'_>) {
        let who = format!("{}/{}", event.account, event.database);
        let bar = self.bar(&who);
        match event.kind {
            EventKind::ExportStarted { attempt } if attempt > 1 => {
                bar.set_message(format!("fresh export (attempt {attempt})"));
            }
            EventKind::Export(ExportEvent::Message(message)) => bar.set_message(message.clone()),
            EventKind::Export(ExportEvent::Retrying { reason, .. }) => {
                bar.set_message(format!("retrying: {reason}"));
            }
            EventKind::DownloadStarted { content_length } => {
                bar.set_style(bytes_style(content_length.is_some()));
                if let Some(total) = content_length {
                    bar.set_length(total);
                }
                bar.set_message("streaming into the sink");
            }
            EventKind::Transferred { bytes, .. } => bar.set_position(bytes),
            EventKind::Done { key, .. } => {
                bar.set_style(
                    ProgressStyle::with_template("✓ {prefix:32} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(format!("stored at {key}"));
            }
            EventKind::Skipped { reason } => {
                bar.set_style(
                    ProgressStyle::with_template("- {prefix:32} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(reason.to_owned());
            }
            EventKind::Failed { error } | EventKind::Leased { reason: error } => {
                bar.set_style(
                    ProgressStyle::with_template("✗ {prefix:32} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(error.to_owned());
            }
            _ => {}
        }
    }
}
