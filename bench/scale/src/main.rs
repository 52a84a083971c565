//! `d1-bench-scale`: d1-backup at scale, through the library crates (see `bench/README.md`).
//!
//! 1. **Run**: `--databases` databases (small generated dumps) spread over `--accounts`
//!    accounts, one API token each, backed up by one `Engine::run` with `[run] concurrency`
//!    `--concurrency` (per account: the default, 2) and the default request budget (900
//!    requests per 5 minutes per token). The D1 API is `d1_export::testing::D1Simulator` (each
//!    export answers `active` to `--polls` polls, then `complete`), behind a proxy that applies
//!    Cloudflare's own limit (1,200 requests per token in any 5 minutes, 429 beyond). The sink
//!    is `r2_sink::testing::S3TestServer` (s3s-fs in-process), wrapped to count calls.
//! 2. **Retention**: the sink is first seeded with `--days - 1` earlier days of real backups
//!    (the same engine, fast polling, not through the proxy); after the measured run there are
//!    `--days` days; then `Engine::prune` with `keep_days = 30` deletes the expired ones, and
//!    the bench counts the calls it made and the DeleteObjects requests the server received.
//!
//! ```text
//! d1-bench-scale [--databases 200] [--accounts 4] [--concurrency 8] [--polls 2]
//!                [--poll-interval-ms 1000] [--days 40] [--dump-kib 16]
//! ```

#[path = "../../server/src/generate.rs"]
#[allow(dead_code)]
mod generate;
#[path = "../../server/src/vocab.rs"]
mod vocab;

mod counting;
mod gate;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use d1_backup_core::{Config, Engine, PruneOptions, RunOptions, Secrets, Status};
use d1_export::testing::D1Simulator;
use r2_sink::testing::S3TestServer;
use tokio_util::sync::CancellationToken;

use counting::{Calls, Counting};
use gate::Gate;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Debug, Clone)]
struct Settings {
    databases: usize,
    accounts: usize,
    concurrency: usize,
    polls: u32,
    poll_interval_ms: u64,
    days: i64,
    dump_kib: u64,
}

fn parse_args() -> BoxResult<Settings> {
    let mut s = Settings {
        databases: 200,
        accounts: 4,
        concurrency: 8,
        polls: 2,
        poll_interval_ms: 1000,
        days: 40,
        dump_kib: 16,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--databases" => s.databases = value.parse()?,
            "--accounts" => s.accounts = value.parse()?,
            "--concurrency" => s.concurrency = value.parse()?,
            "--polls" => s.polls = value.parse()?,
            "--poll-interval-ms" => s.poll_interval_ms = value.parse()?,
            "--days" => s.days = value.parse()?,
            "--dump-kib" => s.dump_kib = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(s)
}

fn account_id(a: usize) -> String {
    format!("{:032x}", 0xbe0c_0000_u64 + a as u64)
}

fn db_name(i: usize) -> String {
    format!("db-{i:04}")
}

/// The config: `accounts` accounts with their share of the databases, named (so each run
/// resolves names with one list call per account, as a real deployment would).
/// `[run]` settings of one engine.
struct Pace<'a> {
    api: &'a str,
    poll_interval_ms: u64,
    concurrency: usize,
    /// Per account; `None`: the default (2).
    per_account: Option<usize>,
    extra_cloudflare: &'a str,
}

fn config_text(s: &Settings, pace: &Pace<'_>) -> String {
    let per_account = pace
        .per_account
        .map(|n| format!("per_account_concurrency = {n}\n"))
        .unwrap_or_default();
    let mut text = format!(
        "[cloudflare]\napi_base_url = \"{}\"\n{}\n\
         [sink]\nkind = \"fs\"\npath = \"unused\"  # the bench passes its own sink\n\n\
         [retention]\nkeep_days = 30\nmin_keep = 3\nprune_after_run = false\n\n\
         [run]\nconcurrency = {}\n{per_account}poll_interval_ms = {}\n\n",
        pace.api, pace.extra_cloudflare, pace.concurrency, pace.poll_interval_ms
    );
    for a in 0..s.accounts {
        let names: Vec<String> = (0..s.databases)
            .filter(|i| i % s.accounts == a)
            .map(|i| format!("\"{}\"", db_name(i)))
            .collect();
        text.push_str(&format!(
            "[[accounts]]\nname = \"acct{a}\"\naccount_id = \"{}\"\ntoken_env = \"TOKEN_{a}\"\nprefix = \"acct{a}\"\ndatabases = [{}]\n\n",
            account_id(a),
            names.join(", ")
        ));
    }
    text
}

fn engine(
    s: &Settings,
    text: &str,
    sink: Arc<Counting<r2_sink::ObjectStoreSink>>,
) -> BoxResult<Engine> {
    let config = Config::from_toml(text, Path::new("bench-scale.toml"))?;
    let secrets =
        Secrets::from_pairs((0..s.accounts).map(|a| (format!("TOKEN_{a}"), format!("token-{a}"))));
    Ok(Engine::builder(config, secrets)
        .sink(sink)
        .owner("bench-scale")
        .build()?)
}

#[tokio::main]
async fn main() -> BoxResult<()> {
    let s = parse_args()?;
    let sim = D1Simulator::start().await;
    let mut uuids = Vec::new();
    for a in 0..s.accounts {
        sim.add_account(&account_id(a), &format!("token-{a}"));
    }
    for i in 0..s.databases {
        let mut dump = Vec::new();
        // Sizes vary from a quarter to the whole of --dump-kib.
        let size = (s.dump_kib * 1024) / 4 * (1 + (i as u64 % 4));
        generate::generate(size, 1 + i as u64, &mut dump)?;
        let uuid = sim.add_database(&account_id(i % s.accounts), &db_name(i), dump);
        uuids.push(uuid);
    }
    let server = S3TestServer::start().await?;
    let calls = Arc::new(Calls::default());
    let sink = Arc::new(Counting {
        inner: server.sink()?,
        calls: Arc::clone(&calls),
    });
    let sim_origin = sim.base_url().trim_end_matches("/client/v4").to_owned();
    let gate = Arc::new(Gate::default());
    let gate_origin = gate::start(sim_origin, Arc::clone(&gate)).await?;
    let today = chrono::Utc::now().date_naive();
    println!(
        "# d1-bench-scale: {} databases, {} accounts (one token each), concurrency {} (2 per account), {} active polls then complete, poll_interval_ms {}, dumps {}–{} KiB",
        s.databases,
        s.accounts,
        s.concurrency,
        s.polls,
        s.poll_interval_ms,
        s.dump_kib / 4,
        s.dump_kib
    );

    // Seeding: the earlier days, fast (no polling wait), straight to the simulator.
    let seed_started = Instant::now();
    for uuid in &uuids {
        sim.set_polls_before_complete(uuid, 0);
    }
    // Seeding is not measured: more at once, a budget that never waits.
    let seed_pace = Pace {
        api: &sim.base_url(),
        poll_interval_ms: 10,
        concurrency: 32,
        per_account: Some(8),
        extra_cloudflare: "requests_per_five_minutes = 1000000",
    };
    let seeding = engine(&s, &config_text(&s, &seed_pace), Arc::clone(&sink))?;
    for back in (1..s.days).rev() {
        let date = today - chrono::Duration::days(back);
        let report = seeding
            .run(&RunOptions::new(date), &(), &CancellationToken::new())
            .await?;
        if report.count(Status::Ok) != s.databases {
            return Err(format!("seeding {date}: only {} ok", report.count(Status::Ok)).into());
        }
    }
    println!(
        "seeded {} earlier days x {} databases in {:.1} s",
        s.days - 1,
        s.databases,
        seed_started.elapsed().as_secs_f64()
    );

    // The measured run.
    for uuid in &uuids {
        sim.set_polls_before_complete(uuid, s.polls);
    }
    let gate_api = format!("{gate_origin}/client/v4");
    let pace = Pace {
        api: &gate_api,
        poll_interval_ms: s.poll_interval_ms,
        concurrency: s.concurrency,
        per_account: None,
        extra_cloudflare: "",
    };
    let measured = engine(&s, &config_text(&s, &pace), Arc::clone(&sink))?;
    let (sim_before, calls_before) = (sim.requests(), calls.snapshot());
    let exports_before: u32 = uuids.iter().map(|u| sim.exports_started(u)).sum();
    gate.reset();
    let started = Instant::now();
    let report = measured
        .run(&RunOptions::new(today), &(), &CancellationToken::new())
        .await?;
    let wall = started.elapsed();
    let exports = uuids.iter().map(|u| sim.exports_started(u)).sum::<u32>() - exports_before;
    let measured_run = Measured {
        wall,
        sim_requests: sim.requests() - sim_before,
        exports,
        sink_calls: calls.snapshot() - calls_before,
    };
    report_run(&s, &gate, &measured_run, &report)?;

    // Retention.
    let (calls_before, deletes_before) = (calls.snapshot(), server.delete_objects_requests());
    let objects_before = server.stored_files().len();
    let started = Instant::now();
    let pruned = measured.prune(&PruneOptions::new(today)).await?;
    let wall = started.elapsed();
    let used = calls.snapshot() - calls_before;
    let delete_requests = server.delete_objects_requests() - deletes_before;
    let expired = pruned
        .decisions
        .iter()
        .filter(|d| d.action == d1_backup_core::Action::Delete)
        .count();
    println!(
        "\n## Retention: keep_days = 30 over {} days x {} databases",
        s.days, s.databases
    );
    println!("| measure | value |\n|---|---|");
    println!("| wall time | {:.2} s |", wall.as_secs_f64());
    println!("| backups deleted (database-days) | {expired} |");
    println!("| objects deleted | {} |", pruned.deleted);
    println!("| DeleteObjects requests received by the S3 server | {delete_requests} |");
    println!("| sink delete_many calls | {} |", used.delete_calls);
    println!(
        "| sink list calls (one per account prefix) | {} |",
        used.lists
    );
    println!("| manifest reads (GET) | {} |", used.gets);
    println!("| errors | {} |", pruned.errors.len());
    println!(
        "| files in the server's data directory before → after | {objects_before} → {} |",
        server.stored_files().len()
    );
    if !pruned.errors.is_empty() {
        return Err(format!("prune errors: {:?}", pruned.errors).into());
    }
    Ok(())
}

/// What the measured run cost.
struct Measured {
    wall: Duration,
    /// Requests the simulator answered (API and downloads).
    sim_requests: u64,
    exports: u32,
    sink_calls: counting::Snapshot,
}

#[allow(clippy::cast_precision_loss)]
fn report_run(
    s: &Settings,
    gate: &Gate,
    m: &Measured,
    report: &d1_backup_core::RunReport,
) -> BoxResult<()> {
    let (wall, sim_requests, sink_calls) = (m.wall, m.sim_requests, m.sink_calls);
    let ok = report.count(Status::Ok);
    let per_token = gate.per_token();
    let api: usize = per_token.iter().map(|(_, v)| v.len()).sum();
    let downloads = sim_requests.saturating_sub(api as u64);
    let n = s.databases as f64;
    let poll_requests = s.polls + 1;
    println!(
        "\n## Run: {} databases, {} accounts",
        s.databases, s.accounts
    );
    println!("| measure | value |\n|---|---|");
    println!("| wall time | {:.1} s |", wall.as_secs_f64());
    println!(
        "| databases ok / failed | {ok} / {} |",
        report.count(Status::Failed)
    );
    println!(
        "| API requests (through the rate gate) | {api} ({:.2} per database) |",
        api as f64 / n
    );
    println!("| signed-URL downloads | {downloads} |");
    println!(
        "| all requests per database (API + download) | {:.2} (target ≤ polls + 3 = {}; polls = {poll_requests} poll requests: {} `active` + 1 `complete`) |",
        sim_requests as f64 / n,
        poll_requests + 3,
        s.polls
    );
    println!("| exports started | {} |", m.exports);
    println!(
        "| 429 answers (Cloudflare's limit: 1,200 per token in any 5 min) | {} |",
        gate.refused.load(std::sync::atomic::Ordering::Relaxed)
    );
    for (token, times) in &per_token {
        let name = token.trim_start_matches("Bearer ");
        println!(
            "| {name}: requests / busiest 5 min / busiest 10 s | {} / {} / {} (client budget: 900 per 5 min, burst 10 then 3/s) |",
            times.len(),
            gate::busiest(times, gate::CLOUDFLARE_WINDOW),
            gate::busiest(times, Duration::from_secs(10)),
        );
    }
    println!(
        "| sink calls in the run: puts / conditional creates / heads / gets / lists / deletes | {} / {} / {} / {} / {} / {} |",
        sink_calls.puts,
        sink_calls.creates,
        sink_calls.heads,
        sink_calls.gets,
        sink_calls.lists,
        sink_calls.delete_calls
    );
    if ok != s.databases {
        let failed: Vec<_> = report
            .databases
            .iter()
            .filter(|d| d.status != Status::Ok)
            .map(|d| format!("{}: {:?}", d.name, d.error))
            .take(5)
            .collect();
        return Err(format!("not every database was backed up: {failed:?}").into());
    }
    Ok(())
}
