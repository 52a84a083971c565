//! `Config::from_toml` on arbitrary text: it never panics, and every error displays. A
//! config that loads is asked everything the CLI asks of it before a run.
#![no_main]

use std::path::Path;

use d1_backup_core::chrono::{TimeZone, Utc};
use d1_backup_core::{Config, Secrets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("fuzz.toml");
    let config = match Config::from_toml(text, origin) {
        Ok(config) => config,
        Err(err) => {
            let _ = (err.to_string(), format!("{err:?}"));
            return;
        }
    };
    let _ = config.ignored_fields();
    let _ = config.secret_env_vars();
    // One fixed instant, so a run is repeatable.
    let Some(now) = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single() else {
        return;
    };
    for schedule in config.schedules() {
        let _ = schedule.next_after(now);
    }
    for lookup in [None, Some("secret")] {
        if let Err(err) = Secrets::resolve(&config, origin, |_| lookup.map(str::to_owned)) {
            let _ = err.to_string();
        }
    }
});
