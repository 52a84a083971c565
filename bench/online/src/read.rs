//! A reference reader for the online path, the benchmark's baseline: every table of a
//! database read through `/raw` in keyset pages (rowid, or the primary key of a WITHOUT ROWID
//! table) with every cell in an exact form, the page size adapted so an answer holds about
//! `target` bytes. The exact form is d1-backup's online export's (`exact`: the storage class
//! and the value, integers as decimal text, text and blobs as hex; see
//! `crates/backup-core/src/online/pages.rs`), or `quote()` (`--cells quote`, smaller answers). It writes nothing: its time is what reading the database through the
//! stand-in costs, the floor under any online export of it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use serde_json::{Value, json};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A keep-alive HTTP/1.1 connection to the stand-in.
struct Client {
    stream: BufReader<TcpStream>,
    host: String,
    path: String,
    token: String,
}

impl Client {
    fn raw(&mut self, sql: &str, params: &[Value]) -> BoxResult<(Value, usize)> {
        let body = json!({ "sql": sql, "params": params }).to_string();
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.path,
            self.host,
            self.token,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut status = String::new();
        self.stream.read_line(&mut status)?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut answer = vec![0u8; length];
        self.stream.read_exact(&mut answer)?;
        if !status.contains(" 200 ") {
            return Err(format!("{}: {}", status.trim(), String::from_utf8_lossy(&answer)).into());
        }
        let value: Value = serde_json::from_slice(&answer)?;
        Ok((value, length))
    }
}

fn rows(answer: &Value) -> &[Value] {
    answer
        .pointer("/result/0/results/rows")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Reads the whole database; prints one summary line.
/// A column's cell in d1-backup's exact form.
fn exact(c: &str) -> String {
    format!(
        "CASE typeof({c}) WHEN 'integer' THEN 'i'||CAST({c} AS TEXT) \
         WHEN 'real' THEN CASE WHEN {c} = 0 THEN CASE WHEN atan2({c}, -1.0) < 0 THEN 'r-0.0' ELSE 'r0.0' END \
         WHEN abs({c}) > 1.7976931348623157e308 THEN 'r'||CAST({c} AS TEXT) ELSE {c} END \
         WHEN 'text' THEN 't'||hex({c}) WHEN 'blob' THEN 'b'||hex({c}) END"
    )
}

pub fn read(
    api: &str,
    account: &str,
    token: &str,
    db: &str,
    target: usize,
    quote: bool,
) -> BoxResult<()> {
    let rest = api
        .strip_prefix("http://")
        .ok_or("--api must be http://HOST:PORT/…")?;
    let (host, base) = rest.split_once('/').unwrap_or((rest, ""));
    let stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    let mut client = Client {
        stream: BufReader::with_capacity(1 << 20, stream),
        host: host.to_owned(),
        path: format!("/{base}/accounts/{account}/d1/database/{db}/raw"),
        token: token.to_owned(),
    };
    let started = Instant::now();
    let (mut requests, mut bytes, mut total_rows, mut largest) = (0u64, 0u64, 0u64, 0usize);
    let (schema, n) = client.raw(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql NOT NULL \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY rowid",
        &[],
    )?;
    requests += 1;
    bytes += n as u64;
    let tables: Vec<(String, String)> = rows(&schema)
        .iter()
        .filter_map(|r| Some((r[0].as_str()?.to_owned(), r[1].as_str()?.to_owned())))
        .collect();
    for (table, sql) in &tables {
        let (info, n) = client.raw(
            "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid",
            &[json!(table)],
        )?;
        requests += 1;
        bytes += n as u64;
        let columns: Vec<(String, i64)> = rows(&info)
            .iter()
            .filter_map(|r| Some((r[0].as_str()?.to_owned(), r[1].as_i64()?)))
            .collect();
        let cells = columns
            .iter()
            .map(|(c, _)| {
                if quote {
                    format!("quote({})", quote_ident(c))
                } else {
                    exact(&quote_ident(c))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let without_rowid = sql.to_ascii_uppercase().contains("WITHOUT ROWID");
        // The key: rowid, or the primary key's columns in key order (as quote()d literals
        // they would not compare; they are selected raw, as text/integers, for the keyset).
        let mut key: Vec<String> = if without_rowid {
            let mut pk: Vec<&(String, i64)> = columns.iter().filter(|(_, p)| *p > 0).collect();
            pk.sort_by_key(|(_, p)| *p);
            pk.iter().map(|(c, _)| quote_ident(c)).collect()
        } else {
            vec!["rowid".to_owned()]
        };
        if key.is_empty() {
            key = vec!["rowid".to_owned()];
        }
        let key_list = key.join(", ");
        let mut last: Option<Vec<Value>> = None;
        let mut page_rows = 256usize;
        loop {
            let keyset = match &last {
                None => String::new(),
                Some(_) if key.len() == 1 => format!("WHERE {key_list} > ?"),
                Some(_) => format!("WHERE ({key_list}) > ({})", vec!["?"; key.len()].join(", ")),
            };
            let statement = format!(
                "SELECT {key_list}, {cells} FROM {} {keyset} ORDER BY {key_list} LIMIT ?",
                quote_ident(table)
            );
            let mut params = last.clone().unwrap_or_default();
            params.push(json!(page_rows));
            let (answer, n) = client.raw(&statement, &params)?;
            requests += 1;
            bytes += n as u64;
            largest = largest.max(n);
            let page = rows(&answer);
            total_rows += page.len() as u64;
            let Some(final_row) = page.last() else { break };
            last = Some(
                final_row
                    .as_array()
                    .map_or_else(Vec::new, |r| r[..key.len()].to_vec()),
            );
            if page.len() < page_rows {
                break;
            }
            // Aim at `target` bytes an answer, from this page's bytes per row.
            let per_row = (n / page.len()).max(1);
            page_rows = (target / per_row).clamp(16, 100_000);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / 1_048_576.0;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "read {} tables, {total_rows} rows: {requests} requests, {bytes} bytes of answers ({:.2} MiB each, largest {largest}), {secs:.2} s, {:.1} MiB/s",
        tables.len(),
        mib / requests as f64,
        mib / secs
    )?;
    Ok(())
}
