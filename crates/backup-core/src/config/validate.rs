//! Up-front validation of a parsed [`Config`]: every problem is found before any network call
//! and reported at once, each naming its field, what is wrong and how to fix it.

use std::collections::HashMap;
use std::path::Path;

use crate::compression::Compression;
use crate::config::{Config, DatabaseEntry, SinkConfig, SinkKind};
use crate::error::{ConfigError, Problem};
use crate::layout;

/// Validates a configuration read from the file at `origin`.
pub(crate) fn validate(config: &Config, origin: &Path) -> Result<(), ConfigError> {
    refuse_if_any(problems(config), origin)
}

/// `Ok` without problems, else the file's invalid values.
fn refuse_if_any(problems: Vec<Problem>, origin: &Path) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            path: origin.to_path_buf(),
            problems,
        })
    }
}

/// Every problem with `config`, in file order; the same rules whether it was read from a file
/// or built in code.
pub(crate) fn problems(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_cloudflare(config, &mut problems);
    check_sink(&config.sink, "sink", &mut problems);
    for (i, replica) in config.replicas.iter().enumerate() {
        check_sink(&replica.sink, &format!("replicas[{i}]"), &mut problems);
        if replica.keep_days == Some(0) {
            problems.push(Problem::new(
                format!("replicas[{i}].keep_days"),
                "must be at least 1",
                "remove it to keep [retention] keep_days",
            ));
        }
        if let Some(name) = &replica.name {
            let taken = config.replicas[..i]
                .iter()
                .any(|r| r.name.as_deref() == Some(name.as_str()));
            if taken || name.trim().is_empty() || name.parse::<usize>().is_ok() {
                problems.push(Problem::new(
                    format!("replicas[{i}].name"),
                    format!("{name:?} is empty, a number or the name of another replica"),
                    "give each replica a distinct name that is not a number",
                ));
            }
        }
    }
    check_numbers(config, &mut problems);
    check_accounts(config, &mut problems);
    check_heartbeat(config, &mut problems);
    check_schedules(config, &mut problems);
    check_encryption(config, &mut problems);
    check_monitoring(config, &mut problems);
    problems
}

/// Validates what the files a configuration names hold (the recipients file), once its
/// paths are resolved.
pub(crate) fn validate_files(config: &Config, origin: &Path) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    check_files(config, &mut problems);
    refuse_if_any(problems, origin)
}

/// The problems of the files a configuration names: every key of `[encryption]
/// recipients_file` must parse.
pub(crate) fn check_files(config: &Config, problems: &mut Vec<Problem>) {
    let Some(path) = config
        .encryption
        .as_ref()
        .and_then(|e| e.recipients_file.as_ref())
    else {
        return;
    };
    if let Err(error) = crate::encryption::read_recipients_file(path) {
        problems.push(Problem::new(
            "encryption.recipients_file",
            error.to_string(),
            "write one age public key (age1…) per line; `age-keygen -y key.txt` prints the one of an identity",
        ));
    }
}

/// `[encryption]`: each recipient parses, and there is at least one.
fn check_encryption(config: &Config, problems: &mut Vec<Problem>) {
    let Some(encryption) = &config.encryption else {
        return;
    };
    for (i, key) in encryption.recipients.iter().enumerate() {
        if let Err(why) = crate::encryption::parse_recipient(key) {
            problems.push(Problem::new(
                format!("encryption.recipients[{i}]"),
                why.to_string(),
                "write the age public key (age1…) of each recipient; `age-keygen -o key.txt` makes a key pair",
            ));
        }
    }
    if encryption.recipients.is_empty() && encryption.recipients_file.is_none() {
        problems.push(Problem::new(
            "encryption.recipients",
            "is empty and there is no recipients_file: nobody could decrypt the backups",
            "add recipients = [\"age1…\"] (`age-keygen -o key.txt` makes a key pair and prints its public key), or remove [encryption]",
        ));
    }
}

fn check_cloudflare(config: &Config, problems: &mut Vec<Problem>) {
    if let Some(url) = &config.cloudflare.api_base_url {
        check_url("cloudflare.api_base_url", url, problems);
    }
    if config.cloudflare.requests_per_five_minutes == Some(0) {
        problems.push(Problem::new(
            "cloudflare.requests_per_five_minutes",
            "must be at least 1",
            "remove it to use the default of 900 (Cloudflare allows 1,200)",
        ));
    }
    if let Some(days) = config.cloudflare.time_travel_days
        && !(1..=30).contains(&days)
    {
        problems.push(Problem::new(
                "cloudflare.time_travel_days",
                format!("must be between 1 and 30, not {days}"),
                "D1 keeps 30 days of Time Travel history on paid plans and 7 on the free plan; write 30 or 7",
            ));
    }
}

fn check_url(field: &str, value: &str, problems: &mut Vec<Problem>) {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty());
    if !ok {
        problems.push(Problem::new(
            field,
            format!("{value:?} is not an http(s) URL"),
            "write a full URL such as \"https://api.cloudflare.com/client/v4\"",
        ));
    }
}

fn check_sink(sink: &SinkConfig, at: &str, problems: &mut Vec<Problem>) {
    let kind = sink.kind;
    let remote = matches!(kind, SinkKind::R2 | SinkKind::S3);
    let require = |field: &str, value: Option<&str>, what: &str, problems: &mut Vec<Problem>| {
        if value.is_none_or(|v| v.trim().is_empty()) {
            problems.push(Problem::new(
                format!("{at}.{field}"),
                format!("is required when {at}.kind = \"{kind}\""),
                format!("set it to {what}"),
            ));
        }
    };
    if remote {
        require(
            "bucket",
            sink.bucket.as_deref(),
            "the bucket name",
            problems,
        );
        require(
            "access_key_id_env",
            sink.access_key_id_env.as_deref(),
            "the name of the environment variable holding the access key id",
            problems,
        );
        require(
            "secret_access_key_env",
            sink.secret_access_key_env.as_deref(),
            "the name of the environment variable holding the secret access key",
            problems,
        );
        for (field, var) in [
            ("access_key_id_env", &sink.access_key_id_env),
            ("secret_access_key_env", &sink.secret_access_key_env),
        ] {
            if let Some(var) = var {
                check_env_name(&format!("{at}.{field}"), var, problems);
            }
        }
        if let Some(endpoint) = &sink.endpoint {
            check_url(&format!("{at}.endpoint"), endpoint, problems);
        }
    }
    match kind {
        SinkKind::R2 => {
            match &sink.account_id {
                Some(id) => check_account_id(&format!("{at}.account_id"), id, problems),
                None if sink.endpoint.is_none() => require(
                    "account_id",
                    None,
                    "the Cloudflare account id that owns the bucket (or set sink.endpoint)",
                    problems,
                ),
                None => {}
            }
            if let Some(var) = &sink.lock_token_env {
                check_env_name(&format!("{at}.lock_token_env"), var, problems);
                if sink.account_id.is_none() {
                    problems.push(Problem::new(
                        format!("{at}.lock_token_env"),
                        "needs account_id: the bucket's lock rules are read from the Cloudflare account that owns it",
                        "set sink.account_id to the account id of the bucket, or remove lock_token_env",
                    ));
                }
            }
        }
        SinkKind::S3 => {
            require(
                "endpoint",
                sink.endpoint.as_deref(),
                "the S3 endpoint URL, e.g. \"https://s3.eu-west-1.amazonaws.com\"",
                problems,
            );
        }
        SinkKind::Fs => {
            if sink.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                require(
                    "path",
                    None,
                    "the backup directory, e.g. \"./backups\"",
                    problems,
                );
            }
        }
    }
}

fn check_numbers(config: &Config, problems: &mut Vec<Problem>) {
    if config.retention.keep_days == 0 {
        problems.push(Problem::new(
            "retention.keep_days",
            "must be at least 1 (0 would expire every backup, including today's)",
            "set it to the number of days to keep, e.g. 30",
        ));
    }
    if config.retention.min_keep == 0 {
        problems.push(Problem::new(
            "retention.min_keep",
            "must be at least 1: retention must never delete the last good backup",
            "remove it to keep the newest 3 complete backups whatever their age",
        ));
    }
    for (field, value) in [
        ("run.concurrency", config.run.concurrency),
        (
            "run.per_account_concurrency",
            config.run.per_account_concurrency,
        ),
    ] {
        if value == 0 {
            problems.push(Problem::new(
                field,
                "must be at least 1",
                "remove it to use the default",
            ));
        }
    }
    if config.run.lease_seconds < 30 {
        problems.push(Problem::new(
            "run.lease_seconds",
            "is under 30: renewals every third of it would be too frequent to be reliable",
            "remove it for the default of 120",
        ));
    }
    if config.run.wait_for_lease_minutes > MAX_WAIT_FOR_LEASE_MINUTES {
        problems.push(Problem::new(
            "run.wait_for_lease_minutes",
            "is over 1440: a run would wait more than a day for another run's lease",
            "remove it for the default of 15",
        ));
    }
    check_overrides(
        "run",
        Some(config.run.poll_interval_ms),
        config.run.part_size_mib,
        Some(config.run.compression),
        problems,
    );
    for (i, account) in config.accounts.iter().enumerate() {
        for (j, db) in account.databases.iter().enumerate() {
            check_overrides(
                &format!("accounts[{i}].databases[{j}]"),
                db.poll_interval_ms,
                db.part_size_mib,
                db.compression,
                problems,
            );
        }
    }
}

/// Checks settings that `[run]` sets and each database may override.
fn check_overrides(
    at: &str,
    poll_interval_ms: Option<u64>,
    part_size_mib: Option<u64>,
    compression: Option<Compression>,
    problems: &mut Vec<Problem>,
) {
    if poll_interval_ms.is_some_and(|ms| ms > 10_000) {
        problems.push(Problem::new(
            format!("{at}.poll_interval_ms"),
            "is over 10000: D1 cancels exports that are not polled continually",
            "keep it between 0 and 10000 (default 1000)",
        ));
    }
    if let Some(mib) = part_size_mib.filter(|mib| !(5..=5120).contains(mib)) {
        problems.push(Problem::new(
            format!("{at}.part_size_mib"),
            format!("{mib} is outside R2's part size limits (5 MiB to 5 GiB)"),
            "use a value from 5 to 5120, or remove it for the default of 16",
        ));
    }
    if let Some(compression) = compression.filter(|c| !c.is_available()) {
        problems.push(Problem::new(
            format!("{at}.compression"),
            format!("{compression} is not available in this build"),
            "use \"none\", or build with the `compression` feature",
        ));
    }
}

fn check_accounts(config: &Config, problems: &mut Vec<Problem>) {
    if config.accounts.is_empty() {
        problems.push(Problem::new(
            "accounts",
            "no [[accounts]] entry: there is nothing to back up",
            "add an [[accounts]] table with name, account_id, token_env, prefix and databases",
        ));
    }
    let mut account_names: HashMap<&str, usize> = HashMap::new();
    // Two accounts may share a prefix, so uniqueness of database names is per prefix.
    let mut keys: HashMap<(String, &str), String> = HashMap::new();
    for (i, account) in config.accounts.iter().enumerate() {
        let at = format!("accounts[{i}]");
        if account.name.is_empty()
            || account.name.contains('/')
            || account.name.trim() != account.name
        {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("{:?} is not a usable account name", account.name),
                "use a short name without '/' or surrounding spaces, e.g. \"ucca\"",
            ));
        } else if let Some(first) = account_names.insert(&account.name, i) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!(
                    "{:?} is already the name of accounts[{first}]",
                    account.name
                ),
                "give every account its own name",
            ));
        }
        match &account.account_id {
            Some(id) => check_account_id(&format!("{at}.account_id"), id, problems),
            None if account.needs_api() => problems.push(Problem::new(
                format!("{at}.account_id"),
                "is required: some databases of this account are exported through the D1 API",
                "set it to the 32-hex-digit Cloudflare account id, or give every database a `sqlite` path",
            )),
            None => {}
        }
        match &account.token_env {
            Some(var) => check_env_name(&format!("{at}.token_env"), var, problems),
            None if account.needs_api() => problems.push(Problem::new(
                format!("{at}.token_env"),
                "is required: some databases of this account are exported through the D1 API",
                "name the environment variable holding the account's API token, e.g. \"CF_API_TOKEN\"",
            )),
            None => {}
        }
        if account
            .wrangler_state
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            problems.push(Problem::new(
                format!("{at}.wrangler_state"),
                "is empty",
                "point it at a wrangler state directory, e.g. \".wrangler/state/v3/d1\"",
            ));
        }
        let prefix = match layout::normalize_prefix(&account.prefix) {
            Ok(prefix) => prefix,
            Err(problem) => {
                problems.push(Problem::new(
                    format!("{at}.prefix"),
                    problem.to_string(),
                    "use a relative key prefix such as \"d1\" or \"backups/d1\"",
                ));
                continue;
            }
        };
        if account.databases.is_empty() && account.wrangler_state.is_none() {
            problems.push(Problem::new(
                format!("{at}.databases"),
                "is empty",
                "list the databases to back up, e.g. databases = [\"ops-db\"]",
            ));
        }
        for (j, db) in account.databases.iter().enumerate() {
            let field = format!("{at}.databases[{j}]");
            check_database(&field, db, problems);
            let slot = (prefix.clone(), db.name.as_str());
            if let Some(first) = keys.get(&slot) {
                problems.push(Problem::new(
                    field,
                    format!("{:?} is also listed at {first} with the same prefix {prefix:?}, so both would write the same key", db.name),
                    "list each database once per prefix, or give the accounts different prefixes",
                ));
            } else {
                keys.insert(slot, field);
            }
        }
    }
}

/// Checks one database entry's own fields.
fn check_database(field: &str, db: &DatabaseEntry, problems: &mut Vec<Problem>) {
    if let Err(problem) = layout::check_database_name(&db.name) {
        problems.push(Problem::new(
            format!("{field}.name"),
            problem.to_string(),
            "use the database's D1 name (letters, digits, '-', '_', '.')",
        ));
    }
    if let Some(id) = &db.id {
        check_database_id(&format!("{field}.id"), id, problems);
    }
    if db.sqlite.is_some() && !cfg!(feature = "sqlite") {
        problems.push(Problem::new(
            format!("{field}.sqlite"),
            "this build cannot dump local SQLite files",
            "build d1-backup with the `sqlite` feature (the d1-backup command has it)",
        ));
    }
    if db.sqlite.is_some() && db.id.is_some() {
        problems.push(Problem::new(
            format!("{field}.sqlite"),
            "and `id` are both set: a database is either local or in D1",
            "keep `sqlite` for a local file, or `id` for a D1 database",
        ));
    }
}

fn check_schedules(config: &Config, problems: &mut Vec<Problem>) {
    let mut names = std::collections::HashSet::new();
    for (i, schedule) in config.schedules.iter().enumerate() {
        let at = format!("schedules[{i}]");
        if schedule.name.trim().is_empty() || !names.insert(schedule.name.as_str()) {
            problems.push(Problem::new(
                format!("{at}.name"),
                format!("{:?} is empty or used twice", schedule.name),
                "give every schedule its own name, e.g. \"small\"",
            ));
        }
        match crate::schedule::Schedule::new(&schedule.name, &schedule.cron, &schedule.databases) {
            Err(problem) => problems.push(Problem::new(
                format!("{at}.cron"),
                problem.to_string(),
                "write five fields in UTC: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\"",
            )),
            Ok(parsed) => {
                let expands = config.accounts.iter().any(|a| a.wrangler_state.is_some());
                for selector in parsed.only.iter().filter(|_| !expands) {
                    let known = config.accounts.iter().any(|a| {
                        a.databases.iter().any(|d| selector.matches(&a.name, &d.name))
                    });
                    if !known {
                        problems.push(Problem::new(
                            format!("{at}.databases"),
                            format!("{selector} matches no configured database"),
                            "use NAME or ACCOUNT/NAME of a database listed under [[accounts]]",
                        ));
                    }
                }
            }
        }
    }
}

fn check_heartbeat(config: &Config, problems: &mut Vec<Problem>) {
    let heartbeat = &config.heartbeat;
    if let Some(kv) = &heartbeat.kv {
        if !config.accounts.iter().any(|a| a.name == kv.account) {
            problems.push(Problem::new(
                "heartbeat.kv.account",
                format!("{:?} names no [[accounts]] entry", kv.account),
                "use the name of the account whose token may write to the KV namespace",
            ));
        }
        if !is_path_segment(&kv.namespace_id) {
            problems.push(Problem::new(
                "heartbeat.kv.namespace_id",
                format!("{:?} is not a KV namespace id", kv.namespace_id),
                "copy the namespace id from `wrangler kv namespace list`",
            ));
        }
        if kv.key.is_empty() || kv.key.len() > 512 {
            problems.push(Problem::new(
                "heartbeat.kv.key",
                "must be 1 to 512 bytes long",
                "use a short key such as \"ucca-backup\"",
            ));
        }
    }
    if let Some(object) = &heartbeat.object
        && layout::normalize_prefix(object).ok().as_deref() != Some(object.as_str())
    {
        problems.push(Problem::new(
                "heartbeat.object",
                format!("{object:?} is not a usable object key"),
                "use a relative key without '..' or empty segments, e.g. \"_heartbeat/ucca-backup.json\"",
            ));
    }
    for (field, url) in [
        ("heartbeat.url", &heartbeat.url),
        ("heartbeat.fail_url", &heartbeat.fail_url),
    ] {
        if let Some(url) = url {
            check_url(field, url, problems);
        }
    }
    if heartbeat.fail_url.is_some() && heartbeat.url.is_none() {
        problems.push(Problem::new(
            "heartbeat.fail_url",
            "is set without heartbeat.url",
            "set heartbeat.url too (pinged after successful runs)",
        ));
    }
}

/// `[daemon] metrics_listen`, `[run] metrics_file` and every `[[notify]]` entry. A notify
/// URL is a secret: problems name its field, never its value.
fn check_monitoring(config: &Config, problems: &mut Vec<Problem>) {
    if let Some(listen) = &config.daemon.metrics_listen
        && listen.parse::<std::net::SocketAddr>().is_err()
    {
        problems.push(Problem::new(
            "daemon.metrics_listen",
            format!("{listen:?} is not an address with a port"),
            "write an IP address and port, e.g. \"127.0.0.1:9187\" (\"0.0.0.0:9187\" for every interface)",
        ));
    }
    if let Some(path) = &config.run.metrics_file
        && (path.as_os_str().is_empty() || path.file_name().is_none())
    {
        problems.push(Problem::new(
            "run.metrics_file",
            format!("{} is not a file path", path.display()),
            "name a file, e.g. \"/var/lib/node_exporter/textfile/d1_backup.prom\"",
        ));
    }
    for (i, notify) in config.notify.iter().enumerate() {
        let field = |name: &str| format!("notify[{i}].{name}");
        let url_ok = (notify.url.starts_with("https://") || notify.url.starts_with("http://"))
            && reqwest::Url::parse(&notify.url).is_ok_and(|u| u.host_str().is_some());
        if !url_ok {
            problems.push(Problem::new(
                field("url"),
                "is not an http(s) URL (its value is not shown: webhook URLs are secrets)",
                "paste the full webhook URL, e.g. \"https://hooks.slack.com/services/…\"",
            ));
        }
        if notify.on.is_empty() {
            problems.push(Problem::new(
                field("on"),
                "is empty, so nothing would ever be sent",
                "write [\"failure\"] or [\"failure\", \"success\"], or remove the entry",
            ));
        }
        if !(1..=300).contains(&notify.timeout_seconds) {
            problems.push(Problem::new(
                field("timeout_seconds"),
                format!("must be between 1 and 300, not {}", notify.timeout_seconds),
                "remove it to use the default of 10",
            ));
        }
        if notify.retries > 10 {
            problems.push(Problem::new(
                field("retries"),
                format!("must be at most 10, not {}", notify.retries),
                "remove it to use the default of 2",
            ));
        }
        if notify.name.as_deref().is_some_and(str::is_empty) {
            problems.push(Problem::new(
                field("name"),
                "is empty",
                "write a short name such as \"slack\", or remove it",
            ));
        }
    }
}

fn check_account_id(field: &str, id: &str, problems: &mut Vec<Problem>) {
    if !is_path_segment(id) {
        problems.push(Problem::new(
            field,
            format!("{id:?} is not a Cloudflare account id"),
            "copy the 32-hex-digit account id from the Cloudflare dashboard's account home",
        ));
    }
}

fn check_database_id(field: &str, id: &str, problems: &mut Vec<Problem>) {
    if !is_path_segment(id) {
        problems.push(Problem::new(
            field,
            format!("{id:?} is not a D1 database uuid"),
            "copy the uuid from `wrangler d1 list`, or remove `id` to look the database up by name",
        ));
    }
}

/// Ids go into API paths: they must be non-empty and made of characters that need no
/// escaping. Their exact shape (32 hex digits, a UUID) is the API's to judge, so that
/// emulators and future id formats work.
fn is_path_segment(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id != "."
        && id != ".."
}

fn check_env_name(field: &str, name: &str, problems: &mut Vec<Problem>) {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        problems.push(Problem::new(
            field,
            "is not an environment variable name (its value is not shown, in case it is a secret)",
            "name the variable that holds the secret (e.g. \"CF_API_TOKEN\"), never the secret itself",
        ));
    }
}

/// The longest `[run] wait_for_lease_minutes`: a day.
const MAX_WAIT_FOR_LEASE_MINUTES: u64 = 24 * 60;
