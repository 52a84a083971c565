//! Heartbeats: after each run (and each prune) a JSON record that says it happened, written
//! to every configured target: a Workers KV key, an object in the sink, a ping URL.
//!
//! A heartbeat that cannot be delivered is reported, never a reason to fail the backups.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use r2_sink::PutOptions;

use crate::engine::Engine;
use crate::error::error_chain;
use crate::report::HeartbeatOutcome;
// The record itself is a persisted format and lives with the others.
pub(crate) use crate::formats::Heartbeat;

/// How long a ping may take: a slow monitoring service must not hold the run up.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Writes `heartbeat` to every configured target. Never fails: each target's outcome is
/// returned.
pub(crate) async fn send_heartbeat(
    engine: &Engine,
    heartbeat: &Heartbeat,
) -> Vec<HeartbeatOutcome> {
    let config = &engine.config().heartbeat;
    let body = Bytes::from(serde_json::to_vec_pretty(heartbeat).unwrap_or_default());
    let mut outcomes = Vec::new();
    if let Some(kv) = &config.kv {
        let found = engine
            .config()
            .accounts
            .iter()
            .position(|a| a.name == kv.account);
        let error = match found {
            Some(i) => match &engine.clients()[i] {
                Some(client) => client
                    .kv_put(
                        engine.config().accounts[i].account_id_or_empty(),
                        &kv.namespace_id,
                        &kv.key,
                        body.clone(),
                    )
                    .await
                    .err()
                    .map(|e| error_chain(&e)),
                None => Some(format!(
                    "account {:?} has no API token configured",
                    kv.account
                )),
            },
            None => Some(format!("no account named {:?}", kv.account)),
        };
        outcomes.push(HeartbeatOutcome {
            target: "kv",
            destination: format!("{}/{}", kv.namespace_id, kv.key),
            error,
        });
    }
    if let Some(key) = &config.object {
        let mut options = PutOptions::default();
        options.content_type = Some("application/json".to_owned());
        let stream = futures::stream::iter([Ok(body.clone())]).boxed();
        let error = engine
            .sink()
            .put_stream(key, stream, options)
            .await
            .err()
            .map(|e| error_chain(&e));
        outcomes.push(HeartbeatOutcome {
            target: "object",
            destination: key.clone(),
            error,
        });
    }
    if let Some(url) = &config.url {
        let target = match (&config.fail_url, heartbeat.failed()) {
            (Some(fail), true) => fail.clone(),
            (None, true) => format!("{}/fail", url.trim_end_matches('/')),
            _ => url.clone(),
        };
        outcomes.push(ping(engine.http(), &target, body).await);
    }
    outcomes
}

/// Posts `body` to `url` through the engine's one HTTP client (never a client of its own, so
/// an embedding service's pool, proxy and headers apply).
async fn ping(http: &reqwest::Client, url: &str, body: Bytes) -> HeartbeatOutcome {
    // Ping URLs carry a secret (the check id in the path, or a token in the query): show the
    // scheme and host only.
    let shown = reqwest::Url::parse(url).map_or_else(
        |_| "the heartbeat URL".to_owned(),
        |u| format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
    );
    let result = http
        .post(url)
        .timeout(PING_TIMEOUT)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let error = match result {
        Ok(response) if response.status().is_success() => None,
        Ok(response) => Some(format!("{shown} answered {}", response.status())),
        Err(e) => Some(format!(
            "cannot reach {shown}: {}",
            error_chain(&e.without_url())
        )),
    };
    HeartbeatOutcome {
        target: "url",
        destination: shown,
        error,
    }
}
