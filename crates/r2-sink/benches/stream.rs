//! Streams a large generated body into the filesystem sink and into an S3 server that enforces
//! R2's part rules, printing throughput and peak memory (VmHWM) of the uploading process.
//!
//! Run by hand (not a timed test):
//!
//! ```text
//! cargo bench -p r2-sink --bench stream -- [--size 1GiB] [--target fs|s3]
//!     [--part-size 16MiB] [--in-flight 4]
//! ```
//!
//! `--endpoint http://HOST:PORT [--bucket NAME]` streams into an external S3 server instead
//! (any server, e.g. `moto_server`; credentials from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`, default `test`/`test`). `R2SINK_BENCH_SIZE` sets the default size. Without `--target`, each target runs in its own
//! child process so each peak is measured alone; the S3 server (s3s-fs with R2 rules, from
//! `r2_sink::testing`) runs in a further child so its memory is not counted.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use r2_sink::testing::{R2Rules, S3TestServer, failing_body, pattern_body, pattern_sha256};
use r2_sink::{
    AllowHttp, BackupSink, Credentials, LocalOptions, MultipartOptions, ObjectStoreSink,
    PutOptions, R2Options, S3Options,
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

const MIB: u64 = 1 << 20;

/// Command-line settings.
#[derive(Debug, Clone)]
struct Settings {
    size: u64,
    target: Option<String>,
    part_size: u64,
    in_flight: usize,
    serve_s3: bool,
    /// Make the source fail after this many bytes (checks that nothing is left behind).
    fail_after: Option<u64>,
    /// An external S3 endpoint to use instead of a child test server.
    endpoint: Option<String>,
    bucket: String,
}

fn parse_size(text: &str) -> BoxResult<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let number: u64 = number.trim().parse()?;
    let unit = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => MIB,
        "g" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}").into()),
    };
    Ok(number * unit)
}

fn parse_args() -> BoxResult<Settings> {
    let default_size = std::env::var("R2SINK_BENCH_SIZE").unwrap_or_else(|_| "1GiB".to_owned());
    let mut settings = Settings {
        size: parse_size(&default_size)?,
        target: None,
        part_size: 16 * MIB,
        in_flight: 4,
        serve_s3: false,
        endpoint: None,
        fail_after: None,
        bucket: S3TestServer::BUCKET.to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--size" => settings.size = parse_size(&value()?)?,
            "--target" => settings.target = Some(value()?),
            "--part-size" => settings.part_size = parse_size(&value()?)?,
            "--in-flight" => settings.in_flight = value()?.parse()?,
            "--serve-s3" => settings.serve_s3 = true,
            "--endpoint" => settings.endpoint = Some(value()?),
            "--bucket" => settings.bucket = value()?,
            "--fail-after" => settings.fail_after = Some(parse_size(&value()?)?),
            // Flags cargo passes to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(settings)
}

/// A field of /proc/self/status in MiB (`VmHWM` is the peak resident set).
fn proc_status_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}

fn main() -> BoxResult<()> {
    let settings = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if settings.serve_s3 {
        return runtime.block_on(serve_s3());
    }
    match settings.target.as_deref() {
        None => run_children(&settings),
        Some(target) => runtime.block_on(run_one(&settings, target)),
    }
}

/// Runs each target in a fresh process, so each VmHWM is its own.
fn run_children(settings: &Settings) -> BoxResult<()> {
    for target in ["fs", "s3"] {
        let status = Command::new(std::env::current_exe()?)
            .args(["--target", target])
            .args(["--size", &settings.size.to_string()])
            .args(["--part-size", &settings.part_size.to_string()])
            .args(["--in-flight", &settings.in_flight.to_string()])
            .args(["--bucket", &settings.bucket])
            .args(
                settings
                    .fail_after
                    .iter()
                    .flat_map(|n| ["--fail-after".to_owned(), n.to_string()]),
            )
            .args(
                settings
                    .endpoint
                    .iter()
                    .flat_map(|e| ["--endpoint", e.as_str()]),
            )
            .status()?;
        if !status.success() {
            return Err(format!("{target} run failed: {status}").into());
        }
    }
    Ok(())
}

/// Puts a body that fails after `bytes` and checks that nothing is left at the key (the
/// child server, if any, also checks that no multipart upload is left open).
async fn check_failed_put(
    sink: &ObjectStoreSink,
    bytes: u64,
    server: Option<std::process::Child>,
) -> BoxResult<()> {
    let key = "bench/failed";
    let result = sink
        .put_stream(key, failing_body(bytes), PutOptions::default())
        .await;
    let error = result.err().ok_or("the failing put succeeded")?;
    let left = sink.head(key).await?;
    println!("failed put after {bytes} B: {error}; object at key afterwards: {left:?}");
    if left.is_some() {
        return Err("a failed put left an object".into());
    }
    if let Some(mut child) = server {
        drop(child.stdin.take());
        if !child.wait()?.success() {
            return Err("S3 server reported a problem".into());
        }
    }
    Ok(())
}

/// A sink on an external S3 server given with `--endpoint`.
fn external_s3(settings: &Settings, multipart: MultipartOptions) -> BoxResult<ObjectStoreSink> {
    let endpoint = settings.endpoint.clone().ok_or("no endpoint")?;
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| "test".to_owned());
    let credentials = Credentials::new(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"));
    let options = S3Options::new(endpoint, &settings.bucket, credentials)
        .allow_http(AllowHttp::Yes)
        .multipart(multipart);
    Ok(ObjectStoreSink::s3(options)?)
}

/// Child mode: serve S3 (R2 rules enforced) until stdin closes.
async fn serve_s3() -> BoxResult<()> {
    let server = S3TestServer::start_with(R2Rules::Enforce).await?;
    println!("{}", server.endpoint());
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    let open = server.list_multipart_uploads().await;
    if !open.is_empty() {
        return Err(format!("multipart uploads left open: {open:?}").into());
    }
    // The server enforced R2's rule already; say what it saw.
    for upload in server.completed_uploads() {
        let sizes = &upload.part_sizes;
        let (last, rest) = sizes.split_last().ok_or("upload without parts")?;
        let first = rest.first().unwrap_or(last);
        let equal = rest.iter().all(|size| size == first) && last <= first;
        eprintln!(
            "server: {} completed in {} parts, {} x {first} B + last {last} B, equal: {equal}; \
             no multipart upload left open",
            upload.key,
            sizes.len(),
            rest.len(),
        );
    }
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52 bytes")]
async fn run_one(settings: &Settings, target: &str) -> BoxResult<()> {
    let multipart = MultipartOptions::default()
        .part_size(settings.part_size)
        .max_in_flight(settings.in_flight);
    let dir = tempfile::tempdir()?;
    let mut server = None;
    let sink = match target {
        "fs" => ObjectStoreSink::local(dir.path(), LocalOptions::default().multipart(multipart))?,
        "s3" if settings.endpoint.is_some() => external_s3(settings, multipart)?,
        "s3" => {
            let mut child = Command::new(std::env::current_exe()?)
                .arg("--serve-s3")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let stdout = child.stdout.take().ok_or("no server stdout")?;
            let mut endpoint = String::new();
            BufReader::new(stdout).read_line(&mut endpoint)?;
            server = Some(child);
            let credentials =
                Credentials::new(S3TestServer::ACCESS_KEY_ID, S3TestServer::SECRET_ACCESS_KEY);
            let options = R2Options::new("0123456789abcdef", S3TestServer::BUCKET, credentials)
                .endpoint(endpoint.trim())
                .multipart(multipart);
            ObjectStoreSink::r2(options)?
        }
        other => return Err(format!("unknown target {other:?} (fs or s3)").into()),
    };
    if let Some(bytes) = settings.fail_after {
        return check_failed_put(&sink, bytes, server).await;
    }
    let baseline = proc_status_mib("VmRSS");
    let started = Instant::now();
    // Copy every chunk into its own allocation, as a real source (network, decompressor)
    // would; slices of the shared pattern would hide the memory a put holds.
    let body = pattern_body(settings.size, 64 * 1024)
        .map_ok(|chunk| Bytes::copy_from_slice(&chunk))
        .boxed();
    let receipt = sink
        .put_stream("bench/object", body, PutOptions::default())
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let peak = proc_status_mib("VmHWM");
    let bound = settings.part_size / MIB * settings.in_flight as u64 + 32;
    let mib = settings.size as f64 / MIB as f64;
    println!(
        "{target}: {mib:.0} MiB in {elapsed:.2} s = {:.0} MiB/s; peak RSS {peak} MiB \
         (before put {baseline} MiB; bound part_size x in_flight + 32 = {} MiB) [{}]",
        mib / elapsed,
        bound,
        sink.describe(),
    );
    if peak > bound {
        return Err(format!("peak RSS {peak} MiB is over the bound {bound} MiB").into());
    }
    if receipt.size != settings.size || receipt.sha256 != pattern_sha256(settings.size) {
        return Err("receipt does not match the generated body".into());
    }
    if let Some(mut child) = server {
        drop(child.stdin.take());
        if !child.wait()?.success() {
            return Err("S3 server reported a problem".into());
        }
    }
    Ok(())
}
