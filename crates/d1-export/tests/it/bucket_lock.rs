//! R2 bucket lock rules read through the simulator: every condition type, disabled rules,
//! the jurisdiction header, a refused token and answers of an unexpected shape.

use chrono::{DateTime, Utc};
use d1_export::testing::D1Simulator;
use d1_export::{ErrorKind, LockCondition};
use serde_json::json;

use crate::support::{TOKEN, assert_no_secret, client};

const ACC: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

#[tokio::test]
async fn reads_rules_of_each_type() {
    let sim = D1Simulator::start().await;
    sim.set_bucket_lock(
        ACC,
        "backups",
        TOKEN,
        json!([
            {"id": "thirty-days", "enabled": true, "prefix": "prod/", "condition": {"type": "Age", "maxAgeSeconds": 2_592_000}},
            {"id": "until-2030", "enabled": true, "prefix": "", "condition": {"type": "Date", "date": "2030-01-01T00:00:00Z"}},
            {"id": "forever", "enabled": false, "condition": {"type": "Indefinite"}},
        ]),
    );
    let client = client(&sim.base_url().replace("/client/v4", ""));
    let rules = client
        .bucket_lock_rules(ACC, "backups", Some("eu"))
        .await
        .unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["thirty-days", "until-2030", "forever"]);
    assert_eq!(
        rules[0].condition,
        LockCondition::Age {
            max_age_seconds: 2_592_000
        }
    );
    let until: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(rules[1].condition, LockCondition::Date { until });
    assert_eq!(rules[2].condition, LockCondition::Indefinite);
    assert!(rules[0].applies_to("prod/2026-01-01/db.sql"));
    assert!(!rules[0].applies_to("staging/2026-01-01/db.sql"));
    assert!(
        rules[1].applies_to("anything"),
        "an empty prefix covers the bucket"
    );
    assert!(
        !rules[2].applies_to("anything"),
        "a disabled rule locks nothing"
    );
    assert_eq!(
        sim.bucket_lock_reads(ACC, "backups"),
        (1, Some("eu".to_owned()))
    );
}

#[tokio::test]
async fn no_rules_is_an_empty_list() {
    let sim = D1Simulator::start().await;
    sim.set_bucket_lock(ACC, "backups", TOKEN, json!([]));
    let client = client(&sim.base_url().replace("/client/v4", ""));
    let rules = client
        .bucket_lock_rules(ACC, "backups", None)
        .await
        .unwrap();
    assert!(rules.is_empty());
    assert_eq!(sim.bucket_lock_reads(ACC, "backups"), (1, None));
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_not_shown() {
    let sim = D1Simulator::start().await;
    sim.set_bucket_lock(ACC, "backups", "the-admin-token", json!([]));
    let client = client(&sim.base_url().replace("/client/v4", ""));
    let err = client
        .bucket_lock_rules(ACC, "backups", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("lock rules of R2 bucket backups"),
        "{err}"
    );
    assert_no_secret(&err);
    let missing = client
        .bucket_lock_rules(ACC, "other", None)
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
}

#[tokio::test]
async fn an_answer_of_another_shape_is_a_protocol_error() {
    let sim = D1Simulator::start().await;
    for (bucket, rules) in [
        (
            "unknown-type",
            json!([{"id": "x", "enabled": true, "condition": {"type": "Legal hold"}}]),
        ),
        (
            "bad-date",
            json!([{"id": "x", "enabled": true, "condition": {"type": "Date", "date": "next year"}}]),
        ),
        (
            "no-id",
            json!([{"enabled": true, "condition": {"type": "Indefinite"}}]),
        ),
        ("not-a-list", json!("none")),
    ] {
        sim.set_bucket_lock(ACC, bucket, TOKEN, rules);
        let client = client(&sim.base_url().replace("/client/v4", ""));
        let err = client
            .bucket_lock_rules(ACC, bucket, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{bucket}: {err}");
        assert!(
            err.to_string().contains("unexpected shape"),
            "{bucket}: {err}"
        );
    }
}
