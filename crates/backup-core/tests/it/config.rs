//! The config contract: the foundation example parses; every mistake gets an error naming the
//! file, the field and the fix.

use std::path::Path;

use d1_backup_core::{Config, ConfigError, Error, ErrorKind, Secrets, SinkKind};

/// The example from the foundation issue, verbatim but for the `<uuid>` placeholder.
const CONTRACT: &str = r#"
[cloudflare]
api_base_url = "https://api.cloudflare.com/client/v4"  # optional; proxies and tests override it

[sink]
kind = "s3"                          # "r2" | "s3" | "fs"
bucket = "ucca-backups"              # r2, s3
account_id = "e5a9830215a8d88961dc6c80a8c7442a"  # r2: endpoint https://<account_id>.r2.cloudflarestorage.com
endpoint = "http://127.0.0.1:9000"   # s3 (required), r2 (optional override); an http:// URL is the
                                     # user's explicit choice (local S3 servers) and is accepted as is
region = "auto"                      # optional
access_key_id_env = "R2_ACCESS_KEY_ID"
secret_access_key_env = "R2_SECRET_ACCESS_KEY"
path = "./backups"                   # fs

[retention]
keep_days = 30

[[accounts]]
name = "ucca"
account_id = "e5a9830215a8d88961dc6c80a8c7442a"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db", "engine-db", { name = "mcp-db", id = "4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9" }]
"#;

fn load(text: &str) -> Result<Config, Error> {
    Config::from_toml(text, Path::new("/etc/d1-backup.toml"))
}

#[test]
fn the_contract_example_parses() {
    let config = load(CONTRACT).unwrap();
    assert_eq!(config.sink.kind, SinkKind::S3);
    assert_eq!(config.retention.keep_days, 30);
    let account = &config.accounts[0];
    assert_eq!(account.prefix, "d1");
    let names: Vec<&str> = account.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ops-db", "engine-db", "mcp-db"]);
    assert_eq!(
        account.databases[2].id.as_deref(),
        Some("4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9")
    );
}

/// Replaces `from` with `to` in the contract example and checks the error mentions every
/// fragment in `expected` (and the file name).
fn check(from: &str, to: &str, expected: &[&str]) {
    assert!(
        CONTRACT.contains(from),
        "bad test: {from:?} not in the example"
    );
    let text = CONTRACT.replacen(from, to, 1);
    let error = load(&text).expect_err(&format!("{from:?} -> {to:?} should be refused"));
    let message = error.to_string();
    assert!(
        message.contains("/etc/d1-backup.toml"),
        "no file name in: {message}"
    );
    for fragment in expected {
        assert!(
            message.contains(fragment),
            "{from:?} -> {to:?}: {fragment:?} not in:\n{message}"
        );
    }
}

#[test]
fn mistakes_name_the_field_and_the_fix() {
    check(
        "keep_days = 30",
        "keep_days = 0",
        &["retention.keep_days", "at least 1"],
    );
    check(
        "keep_days = 30",
        "keep_dayz = 30",
        &["keep_dayz", "unknown field"],
    );
    check(
        "keep_days = 30",
        "keep_days = \"30\"",
        &["field retention.keep_days", "expected u32"],
    );
    check(
        "prefix = \"d1\"",
        "prefix = \"\"",
        &["accounts[0].prefix", "empty"],
    );
    check(
        "prefix = \"d1\"",
        "prefix = \"/d1\"",
        &["accounts[0].prefix", "starts with '/'"],
    );
    check(
        "prefix = \"d1\"",
        "prefix = \"d1/../x\"",
        &["accounts[0].prefix", "\"..\""],
    );
    check(
        "\"engine-db\"",
        "\"ops-db\"",
        &["accounts[0].databases[1]", "also listed"],
    );
    check(
        "\"engine-db\"",
        "\"engine/db\"",
        &["accounts[0].databases[1].name"],
    );
    check("\"engine-db\"", "42", &["a database name"]);
    check(
        "\"engine-db\"",
        "{ name = \"e\", uuid = \"x\" }",
        &["unknown field", "uuid"],
    );
    check(
        "id = \"4b1e2f6a-9c1d-4e8f-a2b3-c4d5e6f7a8b9\"",
        "id = \"a/b\"",
        &["accounts[0].databases[2].id", "uuid"],
    );
    check(
        "account_id = \"e5a9830215a8d88961dc6c80a8c7442a\"\ntoken_env",
        "account_id = \"\"\ntoken_env",
        &["accounts[0].account_id", "32-hex-digit"],
    );
    check(
        "token_env = \"CF_API_TOKEN\"",
        "token_env = \"v1.0-abc def\"",
        &["accounts[0].token_env", "not an environment variable name"],
    );
    check(
        "kind = \"s3\"",
        "kind = \"gcs\"",
        &["kind", "unknown variant"],
    );
    check(
        "endpoint = \"http://127.0.0.1:9000\"",
        "",
        &["sink.endpoint", "required when sink.kind = \"s3\""],
    );
    check(
        "endpoint = \"http://127.0.0.1:9000\"",
        "endpoint = \"127.0.0.1:9000\"",
        &["sink.endpoint", "not an http(s) URL"],
    );
    check(
        "bucket = \"ucca-backups\"",
        "",
        &["sink.bucket", "required"],
    );
    check(
        "path = \"./backups\"",
        "kind_ = 1",
        &["kind_", "unknown field"],
    );
    check(
        "api_base_url = \"https://api.cloudflare.com/client/v4\"",
        "api_base_url = \"api.cloudflare.com\"",
        &["cloudflare.api_base_url"],
    );
    check(
        "[[accounts]]\nname = \"ucca\"",
        "[[accounts]]\nname = \"a/b\"",
        &["accounts[0].name"],
    );
}

#[test]
fn kind_specific_requirements() {
    let fs = CONTRACT.replacen("kind = \"s3\"", "kind = \"fs\"", 1);
    assert!(
        load(&fs).is_ok(),
        "the contract file also works as an fs config"
    );
    let no_path = fs.replacen("path = \"./backups\"", "", 1);
    let message = load(&no_path).unwrap_err().to_string();
    assert!(
        message.contains("sink.path: is required when sink.kind = \"fs\""),
        "{message}"
    );
    let r2 = CONTRACT
        .replacen("kind = \"s3\"", "kind = \"r2\"", 1)
        .replacen(
            "e5a9830215a8d88961dc6c80a8c7442a\"  # r2",
            "zz/x\"  # r2",
            1,
        );
    let message = load(&r2).unwrap_err().to_string();
    assert!(
        message.contains("sink.account_id") && message.contains("32-hex-digit"),
        "{message}"
    );
    let r2_no_account = CONTRACT
        .replacen("kind = \"s3\"", "kind = \"r2\"", 1)
        .replacen("endpoint = \"http://127.0.0.1:9000\"", "", 1)
        .replacen(
            "account_id = \"e5a9830215a8d88961dc6c80a8c7442a\"  # r2",
            "# r2",
            1,
        );
    let message = load(&r2_no_account).unwrap_err().to_string();
    assert!(
        message.contains("sink.account_id: is required when sink.kind = \"r2\""),
        "{message}"
    );
}

#[test]
fn several_problems_are_reported_at_once() {
    let text = CONTRACT
        .replacen("keep_days = 30", "keep_days = 0", 1)
        .replacen("prefix = \"d1\"", "prefix = \"\"", 1);
    let error = load(&text).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    let Some(ConfigError::Invalid { problems, .. }) =
        std::error::Error::source(&error).and_then(|s| s.downcast_ref::<ConfigError>())
    else {
        panic!("expected Invalid as the cause");
    };
    assert_eq!(problems, error.problems());
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["retention.keep_days", "accounts[0].prefix"]);
}

#[test]
fn a_prefix_with_a_trailing_slash_is_normalized() {
    let config =
        load(&CONTRACT.replacen("prefix = \"d1\"", "prefix = \"backups/d1/\"", 1)).unwrap();
    assert_eq!(config.accounts[0].prefix, "backups/d1");
}

#[test]
fn duplicate_names_across_accounts_sharing_a_prefix_are_refused() {
    let second = "\n[[accounts]]\nname = \"other\"\naccount_id = \"f95d45376ebeeeaf011a4f0ec0fb7b38\"\ntoken_env = \"RTO_API_TOKEN\"\nprefix = \"d1/\"\ndatabases = [\"ops-db\"]\n";
    let message = load(&format!("{CONTRACT}{second}"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("accounts[1].databases[0]")
            && message.contains("accounts[0].databases[0]"),
        "{message}"
    );
    let fine = second.replace("prefix = \"d1/\"", "prefix = \"rtopacks\"");
    assert!(load(&format!("{CONTRACT}{fine}")).is_ok());
}

#[test]
fn every_missing_secret_is_named_before_any_network_call() {
    let config = load(CONTRACT).unwrap();
    let error = Secrets::resolve(&config, Path::new("/etc/d1-backup.toml"), |name| {
        (name == "R2_ACCESS_KEY_ID").then(|| "key".to_owned())
    })
    .unwrap_err();
    let message = error.to_string();
    for fragment in [
        "sink.secret_access_key_env",
        "`R2_SECRET_ACCESS_KEY`",
        "accounts[0].token_env",
        "`CF_API_TOKEN`",
        "export CF_API_TOKEN=",
    ] {
        assert!(message.contains(fragment), "{fragment:?} not in {message}");
    }
    assert!(
        !message.contains("R2_ACCESS_KEY_ID`"),
        "a set variable is not reported: {message}"
    );
    let empty = Secrets::resolve(&config, Path::new("x.toml"), |_| Some("  ".to_owned()));
    assert!(empty.is_err(), "blank values count as missing");
}

#[test]
fn secrets_debug_shows_names_only() {
    let secrets = Secrets::from_pairs([("CF_API_TOKEN", "super-secret-value")]);
    let debug = format!("{secrets:?}");
    assert!(
        debug.contains("CF_API_TOKEN") && !debug.contains("super-secret-value"),
        "{debug}"
    );
}

/// `export` in `[run]` and per database, `require_snapshot`, `online_above_mib`; a bad mode
/// names its field.
#[test]
fn export_modes_parse_and_bad_ones_name_their_field() {
    use d1_backup_core::ExportMode;
    let text = CONTRACT.replacen(
        "[retention]",
        "[run]\nexport = \"auto\"\nrequire_snapshot = true\nonline_above_mib = 64\n\n[retention]",
        1,
    );
    let text = text.replacen(
        "\"engine-db\"",
        "{ name = \"engine-db\", export = \"online\" }",
        1,
    );
    let config = load(&text).unwrap();
    assert_eq!(config.run.export, ExportMode::Auto);
    assert!(config.run.require_snapshot);
    assert_eq!(config.run.online_above_mib, 64);
    assert_eq!(config.accounts[0].databases[0].export, None);
    assert_eq!(
        config.accounts[0].databases[1].export,
        Some(ExportMode::Online)
    );
    assert_eq!(load(CONTRACT).unwrap().run.export, ExportMode::D1);
    check(
        "\"engine-db\"",
        "{ name = \"engine-db\", export = \"fast\" }",
        &[
            "accounts[0].databases[1]",
            "unknown variant `fast`",
            "d1",
            "online",
            "auto",
        ],
    );
    check(
        "[retention]",
        "[run]\nexport = \"D1\"\n\n[retention]",
        &["run.export", "unknown variant"],
    );
}
