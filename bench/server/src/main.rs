//! `d1-bench-server`: benchmark support for d1-backup (see `bench/README.md`).
//!
//! ```text
//! d1-bench-server gen --size 1GiB [--seed N] --out FILE
//!     Writes a synthetic dump in D1's export format (realistic INSERT lines, streamed).
//! d1-bench-server serve [--listen 127.0.0.1:0] [--polls N] --account ID --token TOKEN
//!                       --db NAME=FILE [--db NAME=FILE ...]
//!     Emulates D1's export API and the signed URL for those dumps. Prints
//!     `api <base url>`, one `db <name> <uuid> <bytes> <signed url>` line per database and
//!     `ready`, then serves until killed.
//! ```

mod generate;
use d1_bench_server::vocab;
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
            let out = get("--out").ok_or("--out FILE is required")?;
            let tmp = format!("{out}.partial");
            let mut file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
            let written = generate::generate(size, seed, &mut file)?;
            drop(file);
            std::fs::rename(&tmp, &out)?;
            println!("{out}: {written} bytes");
            Ok(())
        }
        "serve" => {
            let dbs = options
                .iter()
                .filter(|(f, _)| f == "--db")
                .enumerate()
                .map(|(i, (_, spec))| {
                    let (name, path) = spec
                        .split_once('=')
                        .ok_or_else(|| format!("--db wants NAME=FILE, not {spec:?}"))?;
                    Ok(serve::Db {
                        name: name.to_owned(),
                        uuid: format!("00000000-0000-4000-8000-{:012x}", i + 1),
                        dump: PathBuf::from(path),
                    })
                })
                .collect::<BoxResult<Vec<_>>>()?;
            let settings = serve::Settings {
                account: get("--account").ok_or("--account ID is required")?,
                token: get("--token").ok_or("--token TOKEN is required")?,
                polls: get("--polls").map_or(Ok(2), |p| p.parse())?,
                dbs,
            };
            let listen = get("--listen").unwrap_or_else(|| "127.0.0.1:0".to_owned());
            serve::run(&listen, settings)?;
            Ok(())
        }
        _ => Err("usage: d1-bench-server gen|serve … (see the source's header)".into()),
    }
}
