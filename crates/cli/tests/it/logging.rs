//! Log output as a file or a pipe sees it: no colour codes, and `--log-format json` gives one
//! JSON object per log line (issue 18).

use std::path::Path;

use serde_json::Value;

use crate::text;

/// A config backing up the example `shop` database into `dir`.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/databases/shop.sqlite");
    let config = dir.join("d1-backup.toml");
    std::fs::write(
        &config,
        format!(
            "[sink]\nkind = \"fs\"\npath = \"backups\"\n\n[[accounts]]\nname = \"local\"\nprefix = \"local\"\ndatabases = [{{ name = \"shop\", sqlite = \"{}\" }}]\n",
            shop.display()
        ),
    )
    .unwrap();
    config
}

/// Runs the binary with stderr captured (a pipe, as a journal or `2>file` is), inheriting no
/// NO_COLOR or RUST_LOG, so the binary alone decides about colour.
async fn run_piped(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> std::process::Output {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_d1-backup"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("D1_BACKUP_CONFIG")
        .env_remove("D1_BACKUP_LOG_FORMAT");
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn logs_into_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let config = config.to_str().unwrap();
    let out = run_piped(&["-vv", "run", "--config", config], &[], dir.path()).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("INFO") || stderr.contains("DEBUG"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape in piped stderr:\n{stderr}"
    );
}

#[tokio::test]
async fn json_log_lines_parse_one_object_each() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let config = config.to_str().unwrap();
    for (args, env) in [
        (
            vec![
                "-v",
                "--log-format",
                "json",
                "run",
                "--config",
                config,
                "--force",
            ],
            vec![],
        ),
        (
            vec!["-v", "run", "--config", config, "--force"],
            vec![("D1_BACKUP_LOG_FORMAT", "json")],
        ),
    ] {
        let out = run_piped(&args, &env, dir.path()).await;
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "{stderr}");
        let events: Vec<Value> = stderr
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        assert!(
            events.iter().any(|e| e["level"] == "INFO"
                && e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("local/shop"))),
            "no INFO event about local/shop in:\n{stderr}"
        );
        // The human summary still prints (as text) unless -q; every log event is JSON.
        assert!(stderr.contains("1 database(s)"), "{stderr}");
        assert!(!stderr.lines().any(|l| l.contains(" INFO ")), "{stderr}");
    }
}
