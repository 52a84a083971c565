//! Schedules: `[[schedules]]` cron expressions (UTC), each naming the databases it covers,
//! parsed and validated. The loop that runs them is `crate::daemon`.

use chrono::{DateTime, Utc};
use croner::Cron;

use crate::error::{Error, ErrorKind};
use crate::selector::Selector;

/// A parsed schedule.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Schedule {
    /// The schedule's name.
    pub name: String,
    /// The cron expression as written.
    pub expression: String,
    /// The databases it covers (empty: all).
    pub only: Vec<Selector>,
    cron: Cron,
}

impl Schedule {
    /// Parses a schedule. The error, of kind [`ErrorKind::Config`], says what is wrong with
    /// the expression or a selector.
    pub fn new(name: &str, expression: &str, databases: &[String]) -> Result<Self, Error> {
        let cron: Cron = expression.parse().map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{expression:?} is not a cron expression: {e}"),
            )
            .with_source(e)
        })?;
        let only = databases
            .iter()
            .map(|d| d.parse::<Selector>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_owned(),
            expression: expression.to_owned(),
            only,
            cron,
        })
    }

    /// The first time after `after` the schedule fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}
