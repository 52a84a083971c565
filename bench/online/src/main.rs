//! `d1-bench-online`: a local D1 stand-in for the online-export benchmark (see
//! `bench/README.md`, "Online export").
//!
//! ```text
//! d1-bench-online gen --size 1GiB [--seed 42] --out DB.sqlite [--dump DUMP.sql]
//!     Creates a synthetic SQLite database whose D1 dump is about --size bytes
//!     (deterministic from size and seed), then writes its D1 dump (to --dump, default
//!     DB.sqlite with .sql for .sqlite).
//! d1-bench-online dump --db DB.sqlite --out DUMP.sql
//!     Writes the D1 export (D1's format, its losses included) of any SQLite file.
//! d1-bench-online serve [--listen 127.0.0.1:0] [--polls 2] [--export-mib-s 0]
//!                       [--log FILE] --account ID --token TOKEN
//!                       --db NAME=DB.sqlite[,DUMP.sql] [--db …]
//!     Serves them: list, info, /raw, /query, time_travel/bookmark, the polling export and
//!     its signed URL. Prints `api <base url>`, `stats <url>`, one
//!     `db <name> <uuid> <dump bytes> <sqlite bytes> <signed url>` line per database and
//!     `ready`. `GET /stats[?reset=1]` answers the request totals; `POST /shutdown` prints
//!     them (`stats {…}`) and exits.
//! d1-bench-online read --api URL --account ID --token TOKEN --db UUID [--page 1MiB]
//!                      [--cells exact|quote]
//!     The baseline reader: every table through `/raw` in keyset pages of about --page bytes
//!     of answer, every cell in d1-backup's exact form (or `quote()`d); writes nothing,
//!     prints one summary line.
//! ```

mod dump;
mod encode;
mod generate;
mod read;
mod serve;

use std::io::BufWriter;
use std::path::PathBuf;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn parse_size(text: &str) -> BoxResult<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.trim().parse()?;
    let unit = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}").into()),
    };
    Ok(number * unit)
}

fn dump_path(sqlite: &str) -> String {
    sqlite
        .strip_suffix(".sqlite")
        .map_or_else(|| format!("{sqlite}.sql"), |s| format!("{s}.sql"))
}

fn write_dump(db: &str, out: &str) -> BoxResult<u64> {
    let tmp = format!("{out}.partial");
    let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let written = dump::dump(db, &mut file)?;
    drop(file);
    std::fs::rename(&tmp, out)?;
    Ok(written)
}

fn main() -> BoxResult<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut options: Vec<(String, String)> = Vec::new();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        options.push((flag, value));
    }
    let get = |name: &str| {
        options
            .iter()
            .rev()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
    };
    match command.as_str() {
        "gen" => {
            let size = parse_size(&get("--size").unwrap_or_else(|| "1GiB".to_owned()))?;
            let seed: u64 = get("--seed").map_or(Ok(42), |s| s.parse())?;
            let out = get("--out").ok_or("--out DB.sqlite is required")?;
            let dump = get("--dump").unwrap_or_else(|| dump_path(&out));
            let tmp = format!("{out}.partial");
            let _ = std::fs::remove_file(&tmp);
            let started = std::time::Instant::now();
            let (rows, estimate) = generate::generate(&tmp, size, seed)?;
            std::fs::rename(&tmp, &out)?;
            let sqlite = std::fs::metadata(&out)?.len();
            eprintln!(
                "{out}: {rows} rows, {sqlite} bytes ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
            let started = std::time::Instant::now();
            let written = write_dump(&out, &dump)?;
            eprintln!(
                "{dump}: {written} bytes of D1 dump (estimated {estimate}; {:.1} s)",
                started.elapsed().as_secs_f64()
            );
            println!("{out} {sqlite} {dump} {written}");
            Ok(())
        }
        "dump" => {
            let db = get("--db").ok_or("--db DB.sqlite is required")?;
            let out = get("--out").unwrap_or_else(|| dump_path(&db));
            let written = write_dump(&db, &out)?;
            println!("{out} {written}");
            Ok(())
        }
        "serve" => {
            let dbs = options
                .iter()
                .filter(|(f, _)| f == "--db")
                .enumerate()
                .map(|(i, (_, spec))| {
                    let (name, paths) = spec.split_once('=').ok_or_else(|| {
                        format!("--db wants NAME=DB.sqlite[,DUMP.sql], not {spec:?}")
                    })?;
                    let (sqlite, dump) = paths.split_once(',').map_or_else(
                        || (paths.to_owned(), dump_path(paths)),
                        |(a, b)| (a.to_owned(), b.to_owned()),
                    );
                    Ok(serve::Db {
                        name: name.to_owned(),
                        uuid: format!("00000000-0000-4000-8000-{:012x}", i + 1),
                        sqlite: PathBuf::from(sqlite),
                        dump: PathBuf::from(dump),
                    })
                })
                .collect::<BoxResult<Vec<_>>>()?;
            let rate: f64 = get("--export-mib-s").map_or(Ok(0.0), |r| r.parse())?;
            let settings = serve::Settings {
                account: get("--account").ok_or("--account ID is required")?,
                token: get("--token").ok_or("--token TOKEN is required")?,
                polls: get("--polls").map_or(Ok(2), |p| p.parse())?,
                export_rate: rate * 1_048_576.0,
                dbs,
                log: get("--log").map(PathBuf::from),
            };
            let listen = get("--listen").unwrap_or_else(|| "127.0.0.1:0".to_owned());
            serve::run(&listen, settings)?;
            Ok(())
        }
        "read" => {
            let target = parse_size(&get("--page").unwrap_or_else(|| "1MiB".to_owned()))?;
            read::read(
                &get("--api").ok_or("--api URL is required")?,
                &get("--account").ok_or("--account ID is required")?,
                &get("--token").ok_or("--token TOKEN is required")?,
                &get("--db").ok_or("--db UUID is required")?,
                usize::try_from(target)?,
                get("--cells").is_some_and(|c| c == "quote"),
            )
        }
        _ => Err("usage: d1-bench-online gen|dump|serve|read … (see the source's header)".into()),
    }
}
