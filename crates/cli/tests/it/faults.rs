//! The fault suite at the process level (see `docs/faults.md`): `d1-backup` killed with
//! SIGKILL mid-upload and run again, two processes on one bucket, the filesystem sink running
//! out of space, a table of malformed configs through `config check`, and a scan of every
//! output (stdout, stderr, stored objects and the S3 server's metadata files) for secrets.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use d1_backup_core::chrono::{DateTime, Utc};
use d1_export::testing::{D1Simulator, Fault};
use futures::TryStreamExt;
use r2_sink::testing::{R2Rules, S3TestServer};
use r2_sink::{BackupSink, PutOptions};
use serde_json::Value;

use crate::text;

const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const TOKEN: &str = "cli-fault-suite-token-6b1f";
const DATE: &str = "2026-11-30";
const KEY: &str = "d1/2026-11-30/ops-db.sql";

/// What must never appear in any output.
const SECRETS: [&str; 4] = [
    TOKEN,
    S3TestServer::SECRET_ACCESS_KEY,
    "X-Amz-Signature",
    "5ec2e7f00d5ec2e7",
];

/// A dump in D1's format of at least `bytes` bytes.
fn dump(name: &str, bytes: usize) -> Vec<u8> {
    let mut sql = String::from(
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);\n",
    );
    let mut i = 0;
    while sql.len() < bytes {
        sql.push_str(&format!(
            "INSERT INTO \"t\" (\"id\",\"x\") VALUES({i},'{name} row {i}');\n"
        ));
        i += 1;
    }
    sql.into_bytes()
}

/// Everything the processes printed, by invocation; scanned for secrets at the end.
#[derive(Clone, Default)]
struct Leaks(Arc<Mutex<Vec<(String, String)>>>);

impl Leaks {
    fn record(&self, what: &str, output: &Output) {
        let mut outputs = self.0.lock().unwrap();
        outputs.push((format!("{what} (stdout)"), text(&output.stdout)));
        outputs.push((format!("{what} (stderr)"), text(&output.stderr)));
    }

    fn record_text(&self, what: &str, body: String) {
        self.0.lock().unwrap().push((what.to_owned(), body));
    }

    fn assert_clean(&self) {
        let outputs = self.0.lock().unwrap();
        assert!(!outputs.is_empty());
        for (what, body) in outputs.iter() {
            for secret in SECRETS {
                assert!(
                    !body.contains(secret),
                    "{secret:?} leaked into {what}:\n{body}"
                );
            }
        }
    }
}

/// The D1 simulator, the S3 server (R2's part rule enforced) and a config file for both.
struct World {
    sim: D1Simulator,
    s3: S3TestServer,
    dir: tempfile::TempDir,
    leaks: Leaks,
}

impl World {
    /// `run` is added to `[run]` (5 MiB parts, no polling pause, the shortest lease allowed).
    async fn new(run: &str) -> Self {
        let sim = D1Simulator::start().await;
        sim.add_account(ACCOUNT, TOKEN);
        let s3 = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[cloudflare]\napi_base_url = \"{}\"\nrequests_per_five_minutes = 100000\n\n\
             [sink]\nkind = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\n\
             access_key_id_env = \"S3_KEY\"\nsecret_access_key_env = \"S3_SECRET\"\n\n\
             [retention]\nkeep_days = 30\n\n\
             [run]\npart_size_mib = 5\nlease_seconds = 30\n{run}\n\n\
             [[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\n\
             prefix = \"d1\"\ndatabases = [\"ops-db\", \"engine-db\"]\n",
            sim.base_url(),
            s3.bucket(),
            s3.endpoint()
        );
        std::fs::write(dir.path().join("d1-backup.toml"), config).unwrap();
        Self {
            sim,
            s3,
            dir,
            leaks: Leaks::default(),
        }
    }

    /// `d1-backup ARGS`, not yet started, with only this world's environment and `-vv`-level
    /// logs of every crate (`RUST_LOG=debug`), so a leak would show.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_d1-backup"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .env("CF_API_TOKEN", TOKEN)
            .env("S3_KEY", S3TestServer::ACCESS_KEY_ID)
            .env("S3_SECRET", S3TestServer::SECRET_ACCESS_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `d1-backup ARGS` to the end; its output is recorded for the secret scan.
    async fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().await.unwrap();
        self.leaks.record(&args.join(" "), &output);
        output
    }

    /// `run --json` for `date`: the exit code and the report.
    async fn run_json(&self, extra: &[&str]) -> (Option<i32>, Value) {
        let mut args = vec!["run", "--json", "--date", DATE];
        args.extend_from_slice(extra);
        let output = self.run(&args).await;
        let report = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&output.stdout), text(&output.stderr)));
        (output.status.code(), report)
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        let sink = self.s3.sink().unwrap();
        let infos: Vec<r2_sink::ObjectInfo> = sink.list(prefix).try_collect().await.unwrap();
        infos.into_iter().map(|i| i.key).collect()
    }

    async fn read(&self, key: &str) -> Vec<u8> {
        let sink = self.s3.sink().unwrap();
        let chunks: Vec<bytes::Bytes> = sink
            .get(key, None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    /// Scans every file the S3 server holds (objects, their metadata sidecars, upload
    /// records) and everything recorded, for secrets.
    fn assert_no_secrets(&self) {
        let mut dirs = vec![self.s3.data_dir().to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let body = std::fs::read(&path).unwrap_or_default();
                    self.leaks
                        .record_text(&format!("stored file {}", path.display()), text(&body));
                }
            }
        }
        self.leaks.assert_clean();
    }
}

/// Waits (real time, up to 30 s) until `ready` holds.
async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, ready: impl Fn() -> F) {
    for _ in 0..1500 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

// ---------------------------------------------------------------------------------------------
// 10: SIGKILL mid-upload, then a rerun.

/// Issue 15: the rerun used to exit 0 with `skipped` (the dead run's lease looked live) and
/// the killed run's multipart upload stayed open. Now the rerun sees the holder died on this
/// machine, takes the lease over at once, aborts the recorded upload and lands the backup.
#[tokio::test]
async fn sigkill_mid_upload_then_an_immediate_rerun_lands_it_and_aborts_the_orphan() {
    let world = World::new("poll_interval_ms = 0").await;
    let body = dump("ops-db", 12 << 20);
    let uuid = world.sim.add_database(ACCOUNT, "ops-db", body.clone());
    kill_mid_upload(&world).await;

    // The immediate rerun takes over (the holder's pid is gone from this machine).
    let started = std::time::Instant::now();
    let (code, report) = world.run_json(&["--only", "ops-db"]).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["databases"][0]["status"], "ok", "{report}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no wait for the lapse"
    );
    assert_eq!(world.sim.exports_started(&uuid), 2);
    assert!(world.read(KEY).await == body, "byte-exact");
    assert_eq!(
        world.keys("d1/2026-11-30/").await,
        [KEY.replace(".sql", ".manifest.json"), KEY.to_owned()],
        "exactly one object at the key, and its manifest"
    );
    assert!(world.keys("d1/_leases/").await.is_empty(), "lease released");
    assert!(
        world.s3.list_multipart_uploads().await.is_empty(),
        "the orphaned upload was aborted"
    );
    let prune = world.run(&["prune", "--date", DATE]).await;
    assert_eq!(prune.status.code(), Some(0), "{}", text(&prune.stderr));
    world.assert_no_secrets();
}

/// Starts `run` on ops-db, SIGKILLs it once its multipart upload is in flight, and checks
/// what it left: nothing at the key, one open upload, a lease naming the process and upload.
async fn kill_mid_upload(world: &World) {
    kill_mid_upload_of(world, &["--only", "ops-db"]).await;
}

/// [`kill_mid_upload`] of the run `run --json --date DATE SELECTION` (which must back up
/// ops-db).
async fn kill_mid_upload_of(world: &World, selection: &[&str]) {
    // Every UploadPart answers 500: the upload stays open while the client retries (its
    // default backoff would keep at it for about a minute), a window to kill it in.
    world.s3.fail_upload_parts(1, u64::MAX);
    let mut args = vec!["run", "--json", "--date", DATE];
    args.extend_from_slice(selection);
    let child = world.command(&args).spawn().unwrap();
    let pid = child.id().unwrap();
    wait_until("a multipart upload is in flight", || async {
        !world.s3.list_multipart_uploads().await.is_empty() && world.s3.upload_part_requests() > 0
    })
    .await;
    let mut child = child;
    child.start_kill().unwrap(); // SIGKILL
    let output = child.wait_with_output().await.unwrap();
    world.leaks.record("the killed run", &output);
    assert_eq!(output.status.signal(), Some(9), "killed by SIGKILL");

    // What the dead process left: nothing at the key, its upload, its lease naming both.
    assert!(!world.keys("d1/2026-11-30/").await.contains(&KEY.to_owned()));
    let orphans = world.s3.list_multipart_uploads().await;
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    let leases = world.keys("d1/_leases/ops-db/").await;
    let lease: Value = serde_json::from_slice(&world.read(leases.last().unwrap()).await).unwrap();
    assert!(
        lease["owner"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pid {pid} "))
    );
    assert_eq!(lease["version"], 2);
    assert_eq!(lease["pid"], pid);
    assert_eq!(lease["uploads"][0]["key"], KEY, "{lease}");
    assert_eq!(
        lease["uploads"][0]["upload_id"],
        orphans[0].as_str(),
        "{lease}"
    );
    world.s3.fail_upload_parts(1, 0); // the store is healthy again
}

/// Issue 15: a shard killed mid-run and rerun lands its databases (and only its own), and no
/// upload stays open.
#[tokio::test]
async fn a_shard_killed_mid_run_and_rerun_lands_its_share() {
    let world = World::new("poll_interval_ms = 0").await;
    let body = dump("ops-db", 12 << 20);
    let ops = world.sim.add_database(ACCOUNT, "ops-db", body.clone());
    let engine = world
        .sim
        .add_database(ACCOUNT, "engine-db", dump("engine-db", 1 << 10));
    let shard = (1..=2)
        .filter_map(|i| d1_backup_core::Shard::new(i, 2))
        .find(|s| s.contains("ucca", "ops-db"))
        .unwrap();
    let other_is_ours = shard.contains("ucca", "engine-db");
    let shard = shard.to_string();
    kill_mid_upload_of(&world, &["--shard", &shard]).await;

    let (code, report) = world.run_json(&["--shard", &shard]).await;
    assert_eq!(code, Some(0), "{report}");
    let names: Vec<&str> = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ops-db"), "{report}");
    assert_eq!(names.contains(&"engine-db"), other_is_ours, "{report}");
    assert!(world.read(KEY).await == body, "byte-exact");
    assert_eq!(world.sim.exports_started(&ops), 2);
    // The killed run may have finished engine-db's backup (the rerun skips it), been killed
    // during its export (the rerun exports it again) or not reached it.
    let engine_exports = world.sim.exports_started(&engine);
    if other_is_ours {
        assert!(
            (1..=2).contains(&engine_exports),
            "{engine_exports} exports"
        );
        assert!(
            world
                .keys("d1/2026-11-30/")
                .await
                .contains(&"d1/2026-11-30/engine-db.sql".to_owned()),
            "engine-db backed up"
        );
    } else {
        assert_eq!(engine_exports, 0, "another shard's database");
    }
    assert!(world.s3.list_multipart_uploads().await.is_empty());
    world.assert_no_secrets();
}

/// Issue 15: `prune` aborts the upload a dead run recorded in its lease.
#[tokio::test]
async fn prune_aborts_the_upload_a_killed_run_left() {
    let world = World::new("poll_interval_ms = 0").await;
    world
        .sim
        .add_database(ACCOUNT, "ops-db", dump("ops-db", 12 << 20));
    kill_mid_upload(&world).await;
    let prune = world.run(&["prune", "--date", DATE]).await;
    assert_eq!(prune.status.code(), Some(0), "{}", text(&prune.stderr));
    assert!(world.s3.list_multipart_uploads().await.is_empty());
}

/// A lease record as another machine's run writes it, expiring at `expires_at`.
async fn plant_lease(world: &World, expires_at: DateTime<Utc>) {
    let record = serde_json::json!({
        "version": 2, "owner": "pid 4242 #0badf00d", "expires_at": expires_at,
        "host": "another-machine pid:[1]", "boot_id": "another-boot", "pid": 4242,
    });
    let sink = world.s3.sink().unwrap();
    let key = "d1/_leases/ops-db/00000000000000000005.json";
    let created = sink
        .put_if_absent(
            key,
            bytes::Bytes::from(record.to_string()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert!(created);
}

/// Issue 15: a holder on another machine that stops renewing is waited for until its lease
/// lapses; then the run takes over and lands the backup (exit 0).
#[tokio::test]
async fn a_dead_holder_on_another_machine_is_waited_out_then_taken_over() {
    let world = World::new("poll_interval_ms = 0\nwait_for_lease_minutes = 1").await;
    let body = dump("ops-db", 4096);
    let uuid = world.sim.add_database(ACCOUNT, "ops-db", body.clone());
    plant_lease(
        &world,
        Utc::now() + d1_backup_core::chrono::Duration::seconds(3),
    )
    .await;
    let started = std::time::Instant::now();
    let (code, report) = world.run_json(&["--only", "ops-db"]).await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["databases"][0]["status"], "ok", "{report}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for the lapse"
    );
    assert_eq!(world.sim.exports_started(&uuid), 1);
    assert!(world.read(KEY).await == body);
}

/// Issue 15: a live holder that keeps the lease for the whole wait makes the database
/// `leased` and the exit code 75, never 0; the heartbeat says it failed.
#[tokio::test]
async fn a_lease_held_for_the_whole_wait_reports_leased_and_exits_75() {
    let world = World::new("poll_interval_ms = 0\nwait_for_lease_minutes = 0").await;
    let uuid = world
        .sim
        .add_database(ACCOUNT, "ops-db", dump("ops-db", 4096));
    plant_lease(
        &world,
        Utc::now() + d1_backup_core::chrono::Duration::seconds(600),
    )
    .await;
    let output = world
        .run(&["run", "--json", "--date", DATE, "--only", "ops-db"])
        .await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(75), "{report}");
    let db = &report["databases"][0];
    assert_eq!(db["status"], "leased", "{report}");
    assert!(
        db["reason"]
            .as_str()
            .unwrap()
            .contains("pid 4242 #0badf00d"),
        "{db}"
    );
    assert!(
        text(&output.stderr).contains("LEASED"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(world.sim.exports_started(&uuid), 0);
}

// ---------------------------------------------------------------------------------------------
// 11: two processes on one bucket.

#[tokio::test]
async fn two_processes_on_one_bucket_export_each_database_once() {
    let world = World::new("poll_interval_ms = 10").await;
    let ops = world
        .sim
        .add_database(ACCOUNT, "ops-db", dump("ops-db", 4096));
    let engine = world
        .sim
        .add_database(ACCOUNT, "engine-db", dump("engine-db", 4096));
    for uuid in [&ops, &engine] {
        world.sim.set_polls_before_complete(uuid, 30);
    }
    let args = ["run", "--json", "--date", DATE];
    let (a, b) = tokio::join!(world.run(&args), world.run(&args));
    for output in [&a, &b] {
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    }
    let reports: Vec<Value> = [&a, &b]
        .iter()
        .map(|o| serde_json::from_slice(&o.stdout).unwrap())
        .collect();
    for (i, uuid) in [&ops, &engine].into_iter().enumerate() {
        assert_eq!(world.sim.exports_started(uuid), 1, "exactly one export");
        let statuses: Vec<&str> = reports
            .iter()
            .map(|r| r["databases"][i]["status"].as_str().unwrap())
            .collect();
        assert!(
            statuses == ["ok", "skipped"] || statuses == ["skipped", "ok"],
            "{statuses:?}"
        );
        let skipped = reports
            .iter()
            .map(|r| &r["databases"][i])
            .find(|d| d["status"] == "skipped")
            .unwrap();
        // Issue 15: the second run waits for the first and finds its backup complete; it
        // never exits 0 on a lease alone.
        let reason = skipped["reason"].as_str().unwrap();
        assert!(reason.contains("already backed up"), "{reason}");
        let key = skipped["key"].as_str().unwrap();
        assert!(!world.read(key).await.is_empty(), "the backup is at {key}");
    }
    assert!(world.keys("d1/_leases/").await.is_empty());
    assert!(world.s3.list_multipart_uploads().await.is_empty());
    world.assert_no_secrets();
}

// ---------------------------------------------------------------------------------------------
// 12: the filesystem sink runs out of space.

/// How the filesystem is made to run out of space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    /// A real disk-full: the sink directory is a 2.25 MiB tmpfs mounted in a private mount
    /// namespace (`unshare -Urm`), so writes end in ENOSPC. Needs user namespaces.
    Tmpfs,
    /// A file size limit (`ulimit -f`, SIGXFSZ ignored), so writes past it end in EFBIG.
    /// Works wherever `sh` does.
    FileSizeLimit,
}

/// Dumps are 1.5 MiB: one backup fits the tmpfs, a second copy (the temporary file a new
/// backup is written to) does not; the file size limit (1024 blocks: 512 KiB for dash,
/// 1 MiB for bash) is below one dump.
const FULL_DUMP: usize = 3 << 19;

/// Runs, with the sink directory limited as `full` says: a backup dated 2026-11-29 (before
/// the limit, for the file size limit), a backup dated 2026-11-30, and a forced backup dated
/// 2026-11-29 again; then copies what is in the sink out. `None` when `full` is not possible
/// on this machine.
const SCRIPT: &str = r#"
set -u
BIN="$1"; SINK="$2"; OUT="$3"; MODE="$4"
step() {
    name="$1"; shift
    "$BIN" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
    echo $? > "$OUT/$name.code"
}
if [ "$MODE" = tmpfs ]; then
    mount -t tmpfs -o size=2304k tmpfs "$SINK" || exit 97
    touch "$OUT/mounted"
    step seed run --json --date 2026-11-29
    step full run --json --date 2026-11-30
    step forced run --json --date 2026-11-29 --force
else
    step seed run --json --date 2026-11-29
    (
        trap '' XFSZ
        ulimit -f 1024
        step full run --json --date 2026-11-30
        step forced run --json --date 2026-11-29 --force
    )
fi
mkdir -p "$OUT/snapshot" && cp -a "$SINK/." "$OUT/snapshot/"
"#;

struct FullRun {
    leaks: Leaks,
    out: PathBuf,
    sink: PathBuf,
    body: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl FullRun {
    /// One step's exit code, JSON report and stderr.
    fn step(&self, name: &str) -> (Option<i32>, Value, String) {
        let read = |ext: &str| std::fs::read(self.out.join(format!("{name}.{ext}"))).unwrap();
        let code = text(&read("code")).trim().parse().ok();
        let (stdout, stderr) = (read("out"), read("err"));
        self.leaks
            .record_text(&format!("{name} (stdout)"), text(&stdout));
        self.leaks
            .record_text(&format!("{name} (stderr)"), text(&stderr));
        let report = serde_json::from_slice(&stdout)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", text(&stderr)));
        (code, report, text(&stderr))
    }

    /// Every file left in the sink, relative to it.
    fn files(&self) -> Vec<String> {
        let root = self.out.join("snapshot");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    files.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        files.sort();
        files
    }
}

async fn fill_the_fs_sink(full: Full) -> Option<FullRun> {
    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    let body = dump("ops-db", FULL_DUMP);
    sim.add_database(ACCOUNT, "ops-db", body.clone());
    let dir = tempfile::tempdir().unwrap();
    let (sink, out) = (dir.path().join("sink"), dir.path().join("out"));
    std::fs::create_dir_all(&sink).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let config = format!(
        "[cloudflare]\napi_base_url = \"{}\"\n\n[sink]\nkind = \"fs\"\npath = \"{}\"\n\n\
         [retention]\nkeep_days = 30\n\n[run]\npoll_interval_ms = 0\n\n\
         [[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\n\
         prefix = \"d1\"\ndatabases = [\"ops-db\"]\n",
        sim.base_url(),
        sink.display()
    );
    std::fs::write(dir.path().join("d1-backup.toml"), config).unwrap();
    let (program, mut args): (&str, Vec<String>) = match full {
        Full::Tmpfs => ("unshare", vec!["-Urm".into(), "sh".into()]),
        Full::FileSizeLimit => ("sh", Vec::new()),
    };
    let mode = if full == Full::Tmpfs {
        "tmpfs"
    } else {
        "ulimit"
    };
    args.extend(
        [
            "-c",
            SCRIPT,
            "sh",
            env!("CARGO_BIN_EXE_d1-backup"),
            &sink.display().to_string(),
            &out.display().to_string(),
            mode,
        ]
        .map(str::to_owned),
    );
    let status = tokio::process::Command::new(program)
        .args(&args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CF_API_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    // No `unshare`, no user namespaces, or no permission to mount a tmpfs in one.
    if full == Full::Tmpfs && !out.join("mounted").exists() {
        return None;
    }
    assert_eq!(status.unwrap().code(), Some(0), "{full:?}");
    Some(FullRun {
        leaks: Leaks::default(),
        out,
        sink,
        body,
        _dir: dir,
    })
}

/// The checks both ways of filling the sink must pass; `cause` is the OS error expected.
fn assert_full_sink_failed_cleanly(run: &FullRun, cause: &str) {
    let (code, seed, _) = run.step("seed");
    assert_eq!(
        (code, &seed["databases"][0]["status"]),
        (Some(0), &Value::from("ok")),
        "{seed}"
    );
    for (step, key) in [
        ("full", "d1/2026-11-30/ops-db.sql"),
        ("forced", "d1/2026-11-29/ops-db.sql"),
    ] {
        let (code, report, stderr) = run.step(step);
        assert_eq!(code, Some(1), "{step}: {report}");
        let db = &report["databases"][0];
        assert_eq!(db["status"], "failed", "{step}: {report}");
        let error = db["error"].as_str().unwrap();
        // The error names the key (the file's path under the sink) and the OS's cause; the
        // summary on stderr names the sink's directory.
        assert!(
            error.starts_with(&format!("upload to {key} failed: ")),
            "{step}: {error}"
        );
        assert!(error.contains(cause), "{step}: {error}");
        assert!(
            stderr.contains(&format!(
                "FAILED   {:<32} upload to {key} failed: ",
                "ucca/ops-db"
            )) && stderr.contains(&format!("1 failed -> fs:{}\n", run.sink.display())),
            "{step}: {stderr}"
        );
    }
    // Only the good backup: no partial file at the final paths, no temporary file, no lease.
    assert_eq!(
        run.files(),
        [
            "d1/2026-11-29/ops-db.manifest.json",
            "d1/2026-11-29/ops-db.sql"
        ],
        "what is left in the sink"
    );
    let kept = std::fs::read(run.out.join("snapshot/d1/2026-11-29/ops-db.sql")).unwrap();
    assert!(kept == run.body, "the good backup was not replaced");
    run.leaks.assert_clean();
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_disk_under_the_fs_sink_fails_cleanly_and_keeps_the_good_backup() {
    // A real ENOSPC where user namespaces allow a private tmpfs; else the file size limit.
    if let Some(run) = fill_the_fs_sink(Full::Tmpfs).await {
        assert_full_sink_failed_cleanly(&run, "No space left on device");
    } else {
        eprintln!("no private tmpfs here (unshare -Urm refused): using a file size limit");
        let run = fill_the_fs_sink(Full::FileSizeLimit).await.unwrap();
        assert_full_sink_failed_cleanly(&run, "File too large");
    }
}

#[tokio::test]
async fn a_file_size_limit_under_the_fs_sink_fails_cleanly_and_keeps_the_good_backup() {
    let run = fill_the_fs_sink(Full::FileSizeLimit).await.unwrap();
    assert_full_sink_failed_cleanly(&run, "File too large");
}

// ---------------------------------------------------------------------------------------------
// 13: malformed configs, each with the exact problem `config check` must report.

/// A valid config that uses every section, so each case below breaks exactly one thing.
/// (The cases of `crates/backup-core/tests/it/config.rs` are not repeated here.)
const BASE: &str = r#"[cloudflare]
api_base_url = "API_BASE"
requests_per_five_minutes = 900

[sink]
kind = "s3"
bucket = "backups"
endpoint = "http://127.0.0.1:9"
region = "auto"
access_key_id_env = "S3_KEY"
secret_access_key_env = "S3_SECRET"

[retention]
keep_days = 30
min_keep = 3

[run]
concurrency = 4
per_account_concurrency = 2
poll_interval_ms = 1000
lease_seconds = 600
compression = "none"
verify = "none"

[heartbeat]
kv = { account = "ucca", namespace_id = "86582e393ca2475e9e0f85c262221be3", key = "ucca-backup" }
object = "_heartbeat/ucca-backup.json"
url = "https://hc-ping.example/check"

[[schedules]]
name = "nightly"
cron = "0 3 * * *"
databases = ["ops-db"]

[[accounts]]
name = "ucca"
account_id = "e5a9830215a8d88961dc6c80a8c7442a"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db", { name = "engine-db", part_size_mib = 16, poll_interval_ms = 500 }]
"#;

/// A secret pasted where the name of its variable belongs: refused, and never echoed.
const PASTED_SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

/// (replace this, with this, every fragment the error must contain). Fragments that start
/// with `  - ` are whole problem lines: `  - FIELD: PROBLEM (FIX)`.
const MALFORMED: &[(&str, &str, &[&str])] = &[
    (
        "min_keep = 3",
        "min_keep = 0",
        &[
            "  - retention.min_keep: must be at least 1: retention must never delete the last good backup (remove it to keep the newest 3 complete backups whatever their age)",
        ],
    ),
    (
        "concurrency = 4",
        "concurrency = 0",
        &["  - run.concurrency: must be at least 1 (remove it to use the default)"],
    ),
    (
        "per_account_concurrency = 2",
        "per_account_concurrency = 0",
        &["  - run.per_account_concurrency: must be at least 1 (remove it to use the default)"],
    ),
    (
        "lease_seconds = 600",
        "lease_seconds = 10",
        &[
            "  - run.lease_seconds: is under 30: renewals every third of it would be too frequent to be reliable (remove it for the default of 120)",
        ],
    ),
    (
        "lease_seconds = 600",
        "lease_seconds = 600\nwait_for_lease_minutes = 1441",
        &[
            "  - run.wait_for_lease_minutes: is over 1440: a run would wait more than a day for another run's lease (remove it for the default of 15)",
        ],
    ),
    (
        "poll_interval_ms = 1000",
        "poll_interval_ms = 20000",
        &[
            "  - run.poll_interval_ms: is over 10000: D1 cancels exports that are not polled continually (keep it between 0 and 10000 (default 1000))",
        ],
    ),
    (
        "verify = \"none\"",
        "verify = \"none\"\npart_size_mib = 4",
        &[
            "  - run.part_size_mib: 4 is outside R2's part size limits (5 MiB to 5 GiB) (use a value from 5 to 5120, or remove it for the default of 16)",
        ],
    ),
    (
        "part_size_mib = 16",
        "part_size_mib = 6000",
        &[
            "  - accounts[0].databases[1].part_size_mib: 6000 is outside R2's part size limits (5 MiB to 5 GiB)",
        ],
    ),
    (
        "poll_interval_ms = 500",
        "poll_interval_ms = 10001",
        &["  - accounts[0].databases[1].poll_interval_ms: is over 10000"],
    ),
    (
        "requests_per_five_minutes = 900",
        "requests_per_five_minutes = 0",
        &[
            "  - cloudflare.requests_per_five_minutes: must be at least 1 (remove it to use the default of 900 (Cloudflare allows 1,200))",
        ],
    ),
    (
        "secret_access_key_env = \"S3_SECRET\"",
        "",
        &[
            "  - sink.secret_access_key_env: is required when sink.kind = \"s3\" (set it to the name of the environment variable holding the secret access key)",
        ],
    ),
    (
        "access_key_id_env = \"S3_KEY\"",
        "access_key_id_env = \"wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY\"",
        &[
            "  - sink.access_key_id_env: is not an environment variable name (its value is not shown, in case it is a secret) (name the variable that holds the secret (e.g. \"CF_API_TOKEN\"), never the secret itself)",
        ],
    ),
    (
        "[[accounts]]\nname = \"ucca\"\naccount_id = \"e5a9830215a8d88961dc6c80a8c7442a\"\n",
        "[[accounts]]\nname = \"ucca\"\n",
        &[
            "  - accounts[0].account_id: is required: some databases of this account are exported through the D1 API (set it to the 32-hex-digit Cloudflare account id, or give every database a `sqlite` path)",
        ],
    ),
    (
        "token_env = \"CF_API_TOKEN\"\n",
        "",
        &[
            "  - accounts[0].token_env: is required: some databases of this account are exported through the D1 API (name the environment variable holding the account's API token, e.g. \"CF_API_TOKEN\")",
        ],
    ),
    (
        "databases = [\"ops-db\", { name = \"engine-db\", part_size_mib = 16, poll_interval_ms = 500 }]",
        "databases = []",
        &[
            "  - accounts[0].databases: is empty (list the databases to back up, e.g. databases = [\"ops-db\"])",
            "  - schedules[0].databases: ops-db matches no configured database",
        ],
    ),
    (
        "prefix = \"d1\"\n",
        "prefix = \"d1\"\nwrangler_state = \"\"\n",
        &[
            "  - accounts[0].wrangler_state: is empty (point it at a wrangler state directory, e.g. \".wrangler/state/v3/d1\")",
        ],
    ),
    (
        "{ name = \"engine-db\",",
        "{ name = \"engine-db\", id = \"4b1e2f6a\", sqlite = \"engine.sqlite\",",
        &[
            "  - accounts[0].databases[1].sqlite: and `id` are both set: a database is either local or in D1 (keep `sqlite` for a local file, or `id` for a D1 database)",
        ],
    ),
    (
        "cron = \"0 3 * * *\"",
        "cron = \"0 3 * *\"",
        &[
            "  - schedules[0].cron: \"0 3 * *\" is not a cron expression: ",
            "(write five fields in UTC: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\")",
        ],
    ),
    (
        "databases = [\"ops-db\"]\n\n[[accounts]]",
        "databases = [\"ops-db\"]\n\n[[schedules]]\nname = \"nightly\"\ncron = \"0 4 * * *\"\n\n[[accounts]]",
        &[
            "  - schedules[1].name: \"nightly\" is empty or used twice (give every schedule its own name, e.g. \"small\")",
        ],
    ),
    (
        "databases = [\"ops-db\"]\n\n[[accounts]]",
        "databases = [\"opsdb\"]\n\n[[accounts]]",
        &[
            "  - schedules[0].databases: opsdb matches no configured database (use NAME or ACCOUNT/NAME of a database listed under [[accounts]])",
        ],
    ),
    (
        "account = \"ucca\"",
        "account = \"uca\"",
        &[
            "  - heartbeat.kv.account: \"uca\" names no [[accounts]] entry (use the name of the account whose token may write to the KV namespace)",
        ],
    ),
    (
        "namespace_id = \"86582e393ca2475e9e0f85c262221be3\"",
        "namespace_id = \"ns/1\"",
        &[
            "  - heartbeat.kv.namespace_id: \"ns/1\" is not a KV namespace id (copy the namespace id from `wrangler kv namespace list`)",
        ],
    ),
    (
        "key = \"ucca-backup\"",
        "key = \"\"",
        &[
            "  - heartbeat.kv.key: must be 1 to 512 bytes long (use a short key such as \"ucca-backup\")",
        ],
    ),
    (
        "object = \"_heartbeat/ucca-backup.json\"",
        "object = \"_heartbeat/../x.json\"",
        &[
            "  - heartbeat.object: \"_heartbeat/../x.json\" is not a usable object key (use a relative key without '..' or empty segments, e.g. \"_heartbeat/ucca-backup.json\")",
        ],
    ),
    (
        "url = \"https://hc-ping.example/check\"",
        "url = \"ftp://hc-ping.example/check\"",
        &[
            "  - heartbeat.url: \"ftp://hc-ping.example/check\" is not an http(s) URL (write a full URL such as \"https://api.cloudflare.com/client/v4\")",
        ],
    ),
    (
        "url = \"https://hc-ping.example/check\"",
        "fail_url = \"https://hc-ping.example/check/fail\"",
        &[
            "  - heartbeat.fail_url: is set without heartbeat.url (set heartbeat.url too (pinged after successful runs))",
        ],
    ),
    (
        "[[accounts]]\nname = \"ucca\"",
        "[[accounts]]\nname = \"ucca\"\nprefix = \"x\"\ndatabases = [\"a\"]\n\n[[accounts]]\nname = \"ucca\"",
        &[
            "  - accounts[1].name: \"ucca\" is already the name of accounts[0] (give every account its own name)",
        ],
    ),
    (
        "[[accounts]]\nname = \"ucca\"",
        "[[accounts_]]\nname = \"ucca\"",
        &[
            ", field accounts_: TOML parse error at line 35, column 3",
            "unknown field `accounts_`, expected one of `cloudflare`, `sink`, `retention`, `run`, `heartbeat`, `schedules`, `daemon`, `notify`, `accounts`",
        ],
    ),
    (
        "compression = \"none\"",
        "compression = \"lz4\"",
        &[
            ", field run.compression: TOML parse error at line 22, column 15",
            "unknown variant `lz4`, expected one of `none`, `zstd`, `gzip`",
        ],
    ),
    (
        "verify = \"none\"",
        "verify = \"maybe\"",
        &[
            ", field run.verify: TOML parse error at line 23, column 10",
            "unknown variant `maybe`, expected one of `none`, `restore`, `against-live`",
        ],
    ),
    (
        "concurrency = 4",
        "concurrency = -1",
        &[
            ", field run.concurrency: TOML parse error at line 18, column 15",
            "invalid value: integer `-1`, expected usize",
        ],
    ),
    (
        "poll_interval_ms = 1000",
        "poll_interval_ms = 1.5",
        &[
            ", field run.poll_interval_ms: TOML parse error at line 20, column 20",
            "invalid type: floating point `1.5`, expected u64",
        ],
    ),
    (
        "keep_days = 30",
        "keep_days = -5",
        &[
            ", field retention.keep_days: TOML parse error at line 14, column 13",
            "invalid value: integer `-5`, expected u32",
        ],
    ),
    (
        "endpoint = \"http://127.0.0.1:9\"",
        "endpoint = \"https://\"",
        &[
            "  - sink.endpoint: \"https://\" is not an http(s) URL (write a full URL such as \"https://api.cloudflare.com/client/v4\")",
        ],
    ),
    (
        "bucket = \"backups\"",
        "bucket = \"backups",
        &[
            ": TOML parse error at line 7, column 18",
            "invalid basic string, expected `\"`",
        ],
    ),
];

#[tokio::test]
async fn malformed_configs_are_refused_with_the_field_and_the_fix_before_any_request() {
    let sim = D1Simulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base = BASE.replace("API_BASE", &sim.base_url());
    d1_backup_core::Config::from_toml(&base, Path::new("base.toml"))
        .expect("the base config is valid");
    let leaks = Leaks::default();
    assert!(MALFORMED.len() >= 30, "{}", MALFORMED.len());
    for (i, (from, to, expected)) in MALFORMED.iter().enumerate() {
        assert!(
            base.contains(from),
            "case {i}: {from:?} is not in the base config"
        );
        let path = dir.path().join(format!("case-{i}.toml"));
        std::fs::write(&path, base.replacen(from, to, 1)).unwrap();
        let output = crate::d1_backup(
            &["config", "check", "--config", path.to_str().unwrap()],
            &[
                ("CF_API_TOKEN", TOKEN),
                ("S3_KEY", "k"),
                ("S3_SECRET", S3TestServer::SECRET_ACCESS_KEY),
            ],
            dir.path(),
        )
        .await;
        leaks.record(&format!("config check, case {i}"), &output);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "case {i} ({to:?}): {stderr}");
        assert!(
            stderr.contains(&format!("invalid config file {}", path.display())),
            "case {i}: the file is named: {stderr}"
        );
        for fragment in *expected {
            assert!(
                stderr.contains(fragment),
                "case {i} ({from:?} -> {to:?}): {fragment:?} not in:\n{stderr}"
            );
        }
        assert!(
            stderr
                .trim_end()
                .ends_with("hint: fix the file and run `d1-backup run` again"),
            "case {i}: {stderr}"
        );
        assert!(
            !stderr.contains(PASTED_SECRET),
            "case {i} echoed a secret: {stderr}"
        );
    }
    assert_eq!(
        sim.requests(),
        0,
        "no request for a config that is not valid"
    );
    leaks.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// 14: no secret in any output.

#[tokio::test]
async fn no_output_of_any_command_shows_a_secret_even_through_faults() {
    let world = World::new("poll_interval_ms = 0").await;
    let ops = world
        .sim
        .add_database(ACCOUNT, "ops-db", dump("ops-db", 11 << 20));
    let engine = world
        .sim
        .add_database(ACCOUNT, "engine-db", dump("engine-db", 1 << 20));
    // The faults whose handling logs the most: a refused signed URL (the URL is logged
    // without its query), a download resumed with Range, a 502 page, a retried S3 part.
    world.sim.inject(&ops, Fault::RefuseSignedUrl(1));
    world.sim.inject(&engine, Fault::DropDownload(300_000));
    world.s3.fail_upload_parts(2, 1);
    // The most the tool's own flags log (-vvv: trace for its crates), then RUST_LOG=debug
    // for every crate.
    let mut loudest = world.command(&["run", "--json", "--date", DATE, "-vvv"]);
    loudest.env_remove("RUST_LOG");
    let output = loudest.output().await.unwrap();
    world.leaks.record("run -vvv", &output);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("resuming download") && stderr.contains("starting export (attempt 2)"),
        "the faults were logged: {stderr}"
    );
    assert!(
        text(&output.stdout).contains("; a fresh export was started"),
        "the report says why: {}",
        text(&output.stdout)
    );
    world.sim.inject(&engine, Fault::BadGatewayHtml(1));
    let (code, report) = world.run_json(&["--force", "--only", "engine-db"]).await;
    assert_eq!(code, Some(0), "{report}");
    for args in [
        &["list", "--json"][..],
        &["databases", "--json"],
        &["config", "check", "--json"],
        &["verify", "--json", "--date", DATE, "--only", "engine-db"],
        &["prune", "--dry-run", "--date", DATE],
        &["run", "--date", DATE, "-vv"],
    ] {
        let output = world.run(args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    // Wrong credentials are secrets too: refused, and never echoed.
    let wrong_token = "wrong-token-7d3e9a1c";
    let wrong_secret = "wrong-secret-4b8f2e6d";
    for (var, value) in [("CF_API_TOKEN", wrong_token), ("S3_SECRET", wrong_secret)] {
        let mut command = world.command(&["run", "--force", "--date", DATE, "-vvv"]);
        command.env_remove("RUST_LOG").env(var, value);
        let output = command.output().await.unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{var}: {}",
            text(&output.stderr)
        );
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(!all.contains(value), "{var}'s value was echoed:\n{all}");
        world
            .leaks
            .record(&format!("run with a wrong {var}"), &output);
    }
    world.assert_no_secrets();
}

/// The open multipart uploads `aws s3api list-multipart-uploads` (the real AWS CLI) sees in
/// the bucket, by key; `None` when the AWS CLI is not installed here (`.ci/run` installs it,
/// and under `CI` its absence fails the test).
async fn aws_cli_open_uploads(world: &World) -> Option<Vec<String>> {
    let mut command = tokio::process::Command::new("aws");
    command
        .args([
            "s3api",
            "list-multipart-uploads",
            "--output",
            "json",
            "--bucket",
        ])
        .arg(world.s3.bucket())
        .args(["--endpoint-url", &world.s3.endpoint()])
        .env("AWS_ACCESS_KEY_ID", S3TestServer::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", S3TestServer::SECRET_ACCESS_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    let output = match command.output().await {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the AWS CLI is missing; .ci/run installs it"
            );
            eprintln!("skipping the AWS CLI check: `aws` is not installed");
            return None;
        }
        Err(error) => panic!("aws: {error}"),
    };
    assert!(output.status.success(), "aws: {}", text(&output.stderr));
    // An empty answer is an empty body, or a document without "Uploads".
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let mut keys: Vec<String> = listed["Uploads"]
        .as_array()
        .map(|uploads| {
            uploads
                .iter()
                .map(|u| u["Key"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    Some(keys)
}

/// Issue 15: an upload left open by a run killed before it could record the upload id
/// (nothing names it anywhere) is aborted by `prune` once it is a day old; younger uploads
/// and keys outside the layout are left alone. Checked with the AWS CLI's own listing.
#[tokio::test]
async fn prune_aborts_unrecorded_uploads_older_than_a_day_under_the_layout() {
    let world = World::new("").await;
    let old = "d1/2026-11-28/ops-db.sql";
    let elsewhere = "d1/exports/big.bin";
    let other_account = "other/2026-11-28/ops-db.sql";
    for key in [old, elsewhere, other_account] {
        world.s3.start_upload(key).await.unwrap();
    }
    world.s3.age_open_uploads(Duration::from_hours(72));
    let young = "d1/2026-11-30/engine-db.sql.zst";
    world.s3.start_upload(young).await.unwrap();
    if let Some(keys) = aws_cli_open_uploads(&world).await {
        assert_eq!(keys, [old, young, elsewhere, other_account]);
    }

    let dry = world
        .run(&["prune", "--dry-run", "--json", "--date", DATE])
        .await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let report: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let stale = report["stale_uploads"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{report}");
    assert_eq!(stale[0]["key"], old);
    assert_eq!(stale[0]["account"], "ucca");
    assert_eq!(stale[0]["aborted"], false);
    assert!(
        text(&dry.stderr).contains(&format!("would abort  {old}")),
        "{}",
        text(&dry.stderr)
    );
    assert_eq!(
        world.s3.list_multipart_uploads().await.len(),
        4,
        "a dry run aborts nothing"
    );

    let prune = world.run(&["prune", "--json", "--date", DATE]).await;
    assert_eq!(prune.status.code(), Some(0), "{}", text(&prune.stderr));
    let report: Value = serde_json::from_slice(&prune.stdout).unwrap();
    assert_eq!(report["stale_uploads"][0]["aborted"], true, "{report}");
    assert_eq!(world.s3.list_multipart_uploads().await.len(), 3);
    if let Some(keys) = aws_cli_open_uploads(&world).await {
        assert_eq!(keys, [young, elsewhere, other_account]);
    }
    world.assert_no_secrets();
}
