//! `[encryption]`: dumps encrypted with age as they stream, through the in-process S3 server
//! and the filesystem, compressed and not; read back by the age crate's own reader, verified
//! and restored with the identity, refused without it or with a wrong one.

use std::path::Path;
use std::sync::Arc;

use async_compression::tokio::bufread::ZstdDecoder;
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    AgeIdentity, Config, Engine, ErrorKind, Manifest, RestoreRequest, RestoreTarget, RunOptions,
    Secrets, Status, VerifyOptions,
};
use d1_export::testing::D1Simulator;
use r2_sink::BackupSink;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::support::{UCCA, UCCA_TOKEN, config_head, date, dump, read, sha256_hex, simulator};

/// A fresh key pair: the identity file's text (secret) and the public key.
fn key_pair() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let text = format!("# created by a test\n# public key: x\n{secret}\n");
    (text, identity.to_public().to_string())
}

/// The plaintext of an age file, by the age crate's own (synchronous) reader.
fn age_decrypt(stored: &[u8], identity_text: &str) -> Vec<u8> {
    let identities = age::IdentityFile::from_buffer(identity_text.as_bytes())
        .unwrap()
        .into_identities()
        .unwrap();
    let decryptor = age::Decryptor::new(stored).unwrap();
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plain).unwrap();
    plain
}

async fn unzstd(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ZstdDecoder::new(bytes).read_to_end(&mut out).await.unwrap();
    out
}

/// Where backups go in a case.
enum Place {
    S3(r2_sink::testing::S3TestServer),
    Fs(tempfile::TempDir),
}

impl Place {
    fn sink_toml(&self) -> String {
        match self {
            Place::S3(server) => format!(
                "kind = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id_env = \"S3_KEY\"\nsecret_access_key_env = \"S3_SECRET\"",
                server.bucket(),
                server.endpoint()
            ),
            Place::Fs(dir) => format!(
                "kind = \"fs\"\npath = \"{}\"",
                dir.path().join("bucket").display()
            ),
        }
    }

    fn secrets(&self) -> Secrets {
        let mut pairs = vec![("CF_API_TOKEN".to_owned(), UCCA_TOKEN.to_owned())];
        if let Place::S3(server) = self {
            pairs.push(("S3_KEY".to_owned(), server.access_key_id().to_owned()));
            pairs.push((
                "S3_SECRET".to_owned(),
                server.secret_access_key().to_owned(),
            ));
        }
        Secrets::from_pairs(pairs)
    }
}

fn config(sim: &D1Simulator, place: &Place, compression: &str, encryption: &str) -> Config {
    let text = format!(
        r#"
{head}
[run]
poll_interval_ms = 0
compression = "{compression}"

{encryption}

[[accounts]]
name = "ucca"
account_id = "{UCCA}"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db"]
"#,
        head = config_head(sim, &place.sink_toml()),
    );
    Config::from_toml(&text, Path::new("test.toml")).unwrap()
}

fn engine(config: Config, place: &Place, identity: Option<&str>) -> Engine {
    let mut builder = Engine::builder(config, place.secrets());
    if let Some(text) = identity {
        builder = builder.identity(AgeIdentity::parse(text, "key.txt").unwrap());
    }
    builder.build().unwrap()
}

async fn manifest(sink: &dyn BackupSink, database: &str) -> Manifest {
    let key = d1_backup_core::manifest_key("d1", date(), database);
    Manifest::from_json(&read(sink, &key).await).unwrap()
}

/// Every distinctive piece of the plaintext that must never be found in a stored object.
fn assert_no_plaintext(stored: &[u8], sql: &[u8]) {
    for needle in [
        &b"CREATE TABLE"[..],
        b"INSERT INTO",
        b"PRAGMA",
        b"ops-db row",
        &sql[sql.len() / 2..sql.len() / 2 + 24],
    ] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "plaintext {:?} found in a stored object",
            String::from_utf8_lossy(needle)
        );
    }
}

#[tokio::test]
async fn encrypted_backups_round_trip_through_s3_and_the_filesystem() {
    let (identity, public) = key_pair();
    let sql = dump("ops-db", 3_000);
    for (place, compression) in [
        (
            Place::S3(r2_sink::testing::S3TestServer::start().await.unwrap()),
            "none",
        ),
        (
            Place::S3(r2_sink::testing::S3TestServer::start().await.unwrap()),
            "zstd",
        ),
        (Place::Fs(tempfile::tempdir().unwrap()), "none"),
        (Place::Fs(tempfile::tempdir().unwrap()), "zstd"),
    ] {
        let sim = simulator().await;
        sim.add_database(UCCA, "ops-db", sql.clone());
        let encryption = format!("[encryption]\nrecipients = [\"{public}\"]");
        // Backing up needs no identity.
        let backer = engine(config(&sim, &place, compression, &encryption), &place, None);
        let report = backer
            .run(&RunOptions::new(date()), &(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(report.succeeded(), "{report:#?}");
        let db = &report.databases[0];
        let suffix = if compression == "zstd" {
            ".sql.zst.age"
        } else {
            ".sql.age"
        };
        assert_eq!(db.key, format!("d1/2026-11-30/ops-db{suffix}"));
        let sink = backer.sink().as_ref();
        let stored = read(sink, &db.key).await;
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        for key in crate::support::keys(sink, "d1/").await {
            assert_no_plaintext(&read(sink, &key).await, &sql);
        }
        // The age crate's own reader gives back exactly the dump.
        let decrypted = age_decrypt(&stored, &identity);
        let decrypted = if compression == "zstd" {
            unzstd(&decrypted).await
        } else {
            decrypted
        };
        assert_eq!(decrypted, sql, "{compression}");
        // The manifest: the encryption, the stored bytes' and the SQL's sizes and hashes.
        let m = manifest(sink, "ops-db").await;
        assert_eq!(m.version, 2);
        let recorded = m.dump.encryption.clone().unwrap();
        assert_eq!(recorded.format, "age");
        assert_eq!(recorded.recipients, vec![public.clone()]);
        assert_eq!(m.dump.bytes, stored.len() as u64);
        assert_eq!(m.dump.sha256, sha256_hex(&stored));
        assert_eq!(m.dump.sql_bytes, sql.len() as u64);
        assert_eq!(m.dump.sql_sha256, sha256_hex(&sql));
        // list decides from the listing, without the identity.
        let listed = backer.list_backups(&[]).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].complete, "{listed:?}");
        assert_eq!(listed[0].encrypted, Some(true));
        // status too, without the identity.
        let status = backer
            .status(&d1_backup_core::StatusOptions::new())
            .await
            .unwrap();
        assert_eq!(status.databases[0].encrypted, Some(true), "{status:?}");
        assert!(status.databases[0].newest_date.is_some(), "{status:?}");
        // A rerun finds the encrypted backup complete.
        let again = backer
            .run(&RunOptions::new(date()), &(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(again.databases[0].status, Status::Skipped, "{again:#?}");

        // With the identity: verify and restore.
        let reader = engine(
            config(&sim, &place, compression, &encryption),
            &place,
            Some(&identity),
        );
        let scratch = tempfile::tempdir().unwrap();
        let verified = reader
            .verify(&VerifyOptions::new(scratch.path()))
            .await
            .unwrap();
        assert!(verified[0].ok, "{verified:#?}");
        assert_eq!(verified[0].tables.get("items"), Some(&3_000));
        let target = scratch.path().join("restored.sqlite");
        let request = RestoreRequest::new(
            "ops-db".parse().unwrap(),
            RestoreTarget::sqlite(&target),
            scratch.path(),
        );
        let plan = reader.restore_plan(&request).await.unwrap();
        assert!(plan.backup.encrypted);
        reader
            .restore_to_sqlite(&plan, &CancellationToken::new())
            .await
            .unwrap();
        let rows: i64 = rusqlite::Connection::open(&target)
            .unwrap()
            .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3_000);
    }
}

#[tokio::test]
async fn verify_and_restore_refuse_without_the_identity_or_with_a_wrong_one() {
    let (identity, public) = key_pair();
    let (stranger, stranger_public) = key_pair();
    let place = Place::Fs(tempfile::tempdir().unwrap());
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 20));
    let encryption = format!("[encryption]\nrecipients = [\"{public}\"]");
    let backer = engine(config(&sim, &place, "none", &encryption), &place, None);
    let report = backer
        .run(&RunOptions::new(date()), &(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("restored.sqlite");
    let request = RestoreRequest::new(
        "ops-db".parse().unwrap(),
        RestoreTarget::sqlite(&target),
        scratch.path(),
    );
    for (who, identity) in [("missing", None), ("wrong", Some(stranger.as_str()))] {
        let reader = engine(config(&sim, &place, "none", &encryption), &place, identity);
        let error = reader
            .verify(&VerifyOptions::new(scratch.path()))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{who}: {error}");
        let message = error.chain();
        assert!(message.contains("ucca/ops-db"), "{message}");
        if identity.is_some() {
            // Both sides named by their public keys, never the secret.
            assert!(message.contains(&stranger_public), "{message}");
            assert!(message.contains(&public), "{message}");
            assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
        } else {
            assert!(message.contains("identity_file"), "{message}");
        }
        let error = reader.restore_plan(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{who}: {error}");
        // Nothing written: no verification record, no restored file.
        let keys = crate::support::keys(backer.sink().as_ref(), "d1/").await;
        assert!(
            keys.iter().all(|k| !k.ends_with(".verification.json")),
            "{keys:?}"
        );
        assert!(!target.exists());
        // A run that would verify what it makes is refused before it starts.
        let run = reader
            .run(
                &RunOptions::new(date()).verify(VerifyOptions::new(scratch.path())),
                &(),
                &CancellationToken::new(),
            )
            .await;
        assert_eq!(
            run.err().map(|e| e.kind()),
            Some(ErrorKind::Config),
            "{who}"
        );
    }
    // The identity file named in the config works as well as one given in code.
    let key_file = scratch.path().join("key.txt");
    std::fs::write(&key_file, &identity).unwrap();
    let with_file = format!(
        "[encryption]\nrecipients = [\"{public}\"]\nidentity_file = \"{}\"",
        key_file.display()
    );
    let reader = engine(config(&sim, &place, "none", &with_file), &place, None);
    let verified = reader
        .verify(&VerifyOptions::new(scratch.path()))
        .await
        .unwrap();
    assert!(verified[0].ok, "{verified:#?}");
}

#[tokio::test]
async fn the_identity_never_shows_in_debug_or_errors() {
    let (identity, public) = key_pair();
    let secret = identity.lines().last().unwrap().to_owned();
    let place = Place::Fs(tempfile::tempdir().unwrap());
    let sim = simulator().await;
    let encryption = format!("[encryption]\nrecipients = [\"{public}\"]");
    let engine = engine(
        config(&sim, &place, "none", &encryption),
        &place,
        Some(&identity),
    );
    let shown = format!("{engine:?}");
    assert!(!shown.contains(&secret), "{shown}");
    assert!(shown.contains(&public), "{shown}");
    // A damaged identity file is named by its line, never quoted.
    let damaged = identity.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-9");
    let error = AgeIdentity::parse(&damaged, "key.txt").unwrap_err();
    let message = format!("{error} {error:?}");
    assert!(message.contains("key.txt line 3"), "{message}");
    assert!(!message.contains(&secret[16..]), "{message}");
}

#[test]
fn recipients_that_do_not_parse_are_config_errors_naming_the_entry() {
    let (_, public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let base = "[sink]\nkind = \"fs\"\npath = \"b\"\n[[accounts]]\nname = \"local\"\nprefix = \"local\"\ndatabases = [{ name = \"x\", sqlite = \"x.sqlite\" }]\n";
    let check = |text: &str, field: &str, says: &str| {
        let error = Config::from_toml(text, &dir.path().join("d1-backup.toml")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        let problems = error.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.field == field && p.problem.contains(says)),
            "{field}: {problems:#?}"
        );
    };
    check(
        &format!("{base}[encryption]\nrecipients = [\"{public}\", \"age1notakey\"]\n"),
        "encryption.recipients[1]",
        "age1notakey",
    );
    check(
        &format!("{base}[encryption]\nrecipients = []\n"),
        "encryption.recipients",
        "nobody could decrypt",
    );
    let (secret_text, _) = key_pair();
    let secret = secret_text.lines().last().unwrap().to_owned();
    let text = format!("{base}[encryption]\nrecipients = [\"{secret}\"]\n");
    check(&text, "encryption.recipients[0]", "secret key");
    let error = Config::from_toml(&text, Path::new("x.toml")).unwrap_err();
    assert!(!format!("{error} {error:?}").contains(&secret));
    std::fs::write(
        dir.path().join("keys.txt"),
        format!("# the team\n{public}\n\nage1broken\n"),
    )
    .unwrap();
    check(
        &format!("{base}[encryption]\nrecipients_file = \"keys.txt\"\n"),
        "encryption.recipients_file",
        "line 4",
    );
    check(
        &format!("{base}[encryption]\nrecipients_file = \"absent.txt\"\n"),
        "encryption.recipients_file",
        "cannot read",
    );
    // A good file is read relative to the config file, and its keys are used.
    std::fs::write(
        dir.path().join("keys.txt"),
        format!("# the team\n{public}\n"),
    )
    .unwrap();
    let config = Config::from_toml(
        &format!("{base}[encryption]\nrecipients_file = \"keys.txt\"\n"),
        &dir.path().join("d1-backup.toml"),
    )
    .unwrap();
    let recipients = config.encryption.unwrap().resolve().unwrap();
    assert_eq!(recipients.public_keys(), vec![public]);
}

/// 100 MiB of SQL, zstd-compressed and encrypted on its way into the S3 server, read back
/// and decrypted as a stream: the SQL's hash matches. (Memory is measured by the
/// benchmark in `bench/`, not here.)
#[tokio::test]
async fn a_hundred_mib_dump_round_trips_encrypted() {
    let (identity, public) = key_pair();
    let server = r2_sink::testing::S3TestServer::start().await.unwrap();
    let place = Place::S3(server);
    let sim = simulator().await;
    let mut sql = dump("ops-db", 10);
    // Pad with incompressible-ish rows up to 100 MiB.
    let mut i = 0u64;
    while sql.len() < 100 * 1024 * 1024 {
        i += 1;
        let noise = hex::encode(Sha256::digest(i.to_le_bytes()));
        sql.extend_from_slice(
            format!(
                "INSERT INTO \"items\" (\"id\",\"body\") VALUES({},'{noise}');\n",
                2_000_000 + i
            )
            .as_bytes(),
        );
    }
    let expected = sha256_hex(&sql);
    let size = sql.len() as u64;
    sim.add_database(UCCA, "ops-db", sql);
    let encryption = format!("[encryption]\nrecipients = [\"{public}\"]");
    let engine = engine(
        config(&sim, &place, "zstd", &encryption),
        &place,
        Some(&identity),
    );
    let report = engine
        .run(&RunOptions::new(date()), &(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let sink: Arc<dyn BackupSink> = engine.sink().clone();
    let m = manifest(sink.as_ref(), "ops-db").await;
    assert_eq!(m.dump.sql_bytes, size);
    assert_eq!(m.dump.sql_sha256, expected);
    // Stream it back: decrypt with the age crate, decompress, hash.
    let body = sink.get(&m.dump.key, None).await.unwrap();
    let reader = futures::TryStreamExt::into_async_read(body);
    let identities = age::IdentityFile::from_buffer(identity.as_bytes())
        .unwrap()
        .into_identities()
        .unwrap();
    let decryptor = age::Decryptor::new_async_buffered(reader).await.unwrap();
    let plain = decryptor
        .decrypt_async(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .unwrap();
    let plain = d1_backup_core::tokio_util::compat::FuturesAsyncReadCompatExt::compat(plain);
    let mut sql = ZstdDecoder::new(tokio::io::BufReader::new(plain));
    let (mut hasher, mut total, mut buf) = (Sha256::new(), 0u64, vec![0u8; 1 << 16]);
    loop {
        let n = sql.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    assert_eq!(total, size);
    assert_eq!(hex::encode(hasher.finalize()), expected);
}

/// `verify --against-live` decrypts too: an encrypted backup of a local SQLite file (with
/// values D1's export would round) matches its source row by row, with the identity file the
/// config names.
#[tokio::test]
async fn against_live_compares_an_encrypted_backup_with_its_source() {
    let (identity, public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), &identity).unwrap();
    let db = rusqlite::Connection::open(dir.path().join("shop.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, note TEXT, raw BLOB);
         INSERT INTO t VALUES (1, 9007199254740993, 'line one\nline two', x'00ff');
         INSERT INTO t VALUES (2, -1, 'plain', NULL);",
    )
    .unwrap();
    drop(db);
    let (engine, sink) = crate::support::local_engine(
        dir.path(),
        r#"{ name = "shop", sqlite = "shop.sqlite", compression = "zstd" }"#,
        &format!("[encryption]\nrecipients = [\"{public}\"]\nidentity_file = \"key.txt\"\n"),
    );
    let report = crate::support::run(&engine, RunOptions::new(date())).await;
    assert_eq!(report.databases[0].key, "local/2026-11-30/shop.sql.zst.age");
    let stored = read(sink.as_ref(), &report.databases[0].key).await;
    assert!(!stored.windows(9).any(|w| w == b"line one\n"));
    let scratch = tempfile::tempdir().unwrap();
    let options = VerifyOptions::new(scratch.path()).against_live(true);
    let v = engine.verify(&options).await.unwrap().remove(0);
    let compared = v.live.as_ref().map(|live| {
        live.tables
            .iter()
            .map(|t| {
                (
                    t.table.as_str(),
                    t.differences,
                    t.backup_fingerprint == t.live_fingerprint,
                )
            })
            .collect::<Vec<_>>()
    });
    assert!(v.ok, "{v:#?}");
    assert_eq!(compared, Some(vec![("t", 0, true)]), "{v:#?}");
}
