//! Schedules on paused tokio time: the engine's clock is a `TokioClock`, so the daemon loop's
//! wait until the next cron time takes no real time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use d1_backup_core::chrono::{DateTime, Utc};
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{Clock, DaemonEvent, Engine, TokioClock};
use r2_sink::{BackupSink, ObjectStoreSink};

use crate::support::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const NIGHTLY: &str =
    "\n[[schedules]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\ndatabases = [\"ops-db\"]\n";

/// What the loop reported, with the engine clock's time of each event.
#[derive(Default)]
struct Events(Mutex<Vec<(String, DateTime<Utc>)>>);

impl Events {
    fn record(&self, clock: &dyn Clock, event: &DaemonEvent<'_>) {
        let name = match event {
            DaemonEvent::NextRuns(next) => format!("next {next:?}"),
            DaemonEvent::RunStarted { schedule } => format!("started {schedule}"),
            DaemonEvent::RunFinished { schedule, report } => {
                format!("finished {schedule} {}", report.date)
            }
            DaemonEvent::RunFailed { schedule, error } => format!("failed {schedule}: {error}"),
            DaemonEvent::Draining { .. } => "draining".to_owned(),
            _ => "other".to_owned(),
        };
        self.0.lock().unwrap().push((name, clock.now()));
    }

    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn time_of(&self, prefix: &str) -> Option<DateTime<Utc>> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, t)| *t)
    }
}

#[tokio::test(start_paused = true)]
async fn a_schedule_fires_at_its_next_cron_time() {
    let wall = std::time::Instant::now();
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(
        &sim,
        "kind = \"fs\"\npath = \"/nonexistent-unused\"",
        r#""ops-db""#,
        r#""rto-x""#,
    ) + NIGHTLY;
    let clock = Arc::new(TokioClock::starting_at(at("2026-11-30T02:59:00Z")));
    let engine = Engine::builder(parse(&text), secrets())
        .sink(sink)
        .clock(clock.clone())
        .build()
        .unwrap();
    let events = Events::default();
    let stop = CancellationToken::new();
    let on_event = |event: DaemonEvent<'_>| {
        events.record(clock.as_ref(), &event);
        // Stop as soon as the run starts: this test is about when, not about the backup.
        if matches!(event, DaemonEvent::RunStarted { .. }) {
            stop.cancel();
        }
    };
    let one_second_before = async {
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(clock.now(), at("2026-11-30T02:59:59Z"));
        assert!(events.time_of("started").is_none(), "{:?}", events.names());
    };
    let (_, ()) = tokio::join!(
        engine.run_schedules(&(), &stop, Duration::ZERO, &on_event),
        one_second_before
    );
    let names = events.names();
    assert_eq!(
        names.first().map(String::as_str),
        Some(r#"next [("nightly", 2026-11-30T03:00:00Z)]"#)
    );
    assert_eq!(
        events.time_of("started nightly"),
        Some(at("2026-11-30T03:00:00Z"))
    );
    assert!(
        names.iter().any(|n| n == "finished nightly 2026-11-30"),
        "the run is dated by the fire time: {names:?}"
    );
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "a minute of schedule in {:?}",
        wall.elapsed()
    );
}

/// A schedule whose next time is days away still fires on time, and the loop then announces
/// the following one.
#[tokio::test(start_paused = true)]
async fn the_loop_sleeps_until_the_following_fire_time() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let weekly = NIGHTLY.replace("0 3 * * *", "30 4 * * 1");
    let text = config_text(
        &sim,
        "kind = \"fs\"\npath = \"/nonexistent-unused\"",
        r#""ops-db""#,
        r#""rto-x""#,
    ) + &weekly;
    // 2026-11-30 is a Monday: the next Monday 04:30 after 05:00 is a week later.
    let clock = Arc::new(TokioClock::starting_at(at("2026-11-30T05:00:00Z")));
    let engine = Engine::builder(parse(&text), secrets())
        .sink(Arc::new(ObjectStoreSink::memory()))
        .clock(clock.clone())
        .build()
        .unwrap();
    let events = Events::default();
    let stop = CancellationToken::new();
    let on_event = |event: DaemonEvent<'_>| {
        events.record(clock.as_ref(), &event);
        if matches!(event, DaemonEvent::RunStarted { .. }) {
            stop.cancel();
        }
    };
    engine
        .run_schedules(&(), &stop, Duration::ZERO, &on_event)
        .await;
    assert_eq!(
        events.time_of("started nightly"),
        Some(at("2026-12-07T04:30:00Z"))
    );
}
