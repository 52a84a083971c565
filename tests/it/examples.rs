//! Every example config in `examples/` stays valid as the config model grows.

use std::path::Path;

use d1_backup::core::Config;

#[test]
fn example_configs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(checked >= 1, "no example config found in {}", dir.display());
}

#[test]
fn the_seed_example_covers_the_whole_deployment() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-deployment.toml");
    let config = Config::load(&path).unwrap();
    let names: Vec<String> = config
        .accounts
        .iter()
        .flat_map(|a| {
            a.databases
                .iter()
                .map(move |d| format!("{}/{}", a.prefix, d.name))
        })
        .collect();
    assert_eq!(names.len(), 12);
    assert!(
        names.contains(&"rtopacks/rto-nrt-db".to_owned()),
        "the once-deferred database"
    );
    assert!(names.contains(&"d1/mcp-db".to_owned()));
    assert_eq!(config.retention.keep_days, 30);
    let schedules: Vec<(String, usize)> = config
        .schedules()
        .iter()
        .map(|s| (s.expression.clone(), s.only.len()))
        .collect();
    assert_eq!(
        schedules,
        [("0 3 * * *".to_owned(), 9), ("0 4 * * *".to_owned(), 3)]
    );
    let kv = config.heartbeat.kv.as_ref().unwrap();
    assert_eq!(kv.namespace_id, "86582e393ca2475e9e0f85c262221be3");
}
