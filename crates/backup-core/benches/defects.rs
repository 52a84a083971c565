//! Feeds a dump file through `DefectScanner` in 64 KiB chunks and prints the throughput and
//! what was found. Run by hand (not a timed test), e.g. on a 200 MiB dump from the benchmark's
//! generator:
//!
//! ```text
//! (cd bench/server && cargo build --release)
//! target/release/d1-bench-server gen --size 200MiB --out /tmp/dump.sql
//! cargo bench -p d1-backup-core --bench defects -- /tmp/dump.sql
//! ```
#![allow(missing_docs)]

use std::error::Error;
use std::time::Instant;

use d1_backup_core::DefectScanner;

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .ok_or("usage: defects DUMP_FILE")?;
    let dump = std::fs::read(&path)?;
    for run in 1..=3 {
        let started = Instant::now();
        let mut scanner = DefectScanner::new();
        for chunk in dump.chunks(64 << 10) {
            scanner.feed(chunk);
        }
        let defects = scanner.finish();
        let secs = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let mib = dump.len() as f64 / f64::from(1 << 20);
        println!(
            "run {run}: {mib:.0} MiB in {secs:.2} s = {:.0} MiB/s; tables flagged: {:?}",
            mib / secs,
            defects.tables().collect::<Vec<_>>()
        );
    }
    Ok(())
}
