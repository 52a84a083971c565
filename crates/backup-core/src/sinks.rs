//! Building the configured sink from `[sink]` and the secrets it names.

use std::sync::Arc;

use r2_sink::{
    AllowHttp, Credentials, Durability, LocalOptions, MultipartOptions, ObjectStoreSink, R2Options,
    S3Options,
};

use crate::config::{RunConfig, SinkConfig, SinkKind};
use crate::error::{Error, ErrorKind};
use crate::secrets::Secrets;

/// Builds the sink `[sink]` (or a `[[replicas]]` entry, `at` naming it in errors) describes.
/// Validation already checked that the fields `kind` needs are present; a missing one here is
/// reported, not assumed.
pub(crate) fn from_config(
    config: &SinkConfig,
    at: &str,
    run: &RunConfig,
    secrets: &Secrets,
) -> Result<SharedSink, Error> {
    let mut multipart = MultipartOptions::default();
    if let Some(mib) = run.part_size_mib {
        multipart = multipart.part_size(mib * 1024 * 1024);
    }
    let describe = || {
        format!(
            "{} ({})",
            config.kind,
            config.bucket.as_deref().unwrap_or("-")
        )
    };
    let sink_error =
        |source| Error::from(source).context(format_args!("cannot set up the {} sink", describe()));
    let sink = match config.kind {
        SinkKind::Fs => {
            let path = required(config.path.as_ref(), &format!("{at}.path"))?;
            // Backups are worth the fsync: a put that returned survives a crash.
            ObjectStoreSink::local(
                path,
                LocalOptions::default()
                    .fsync(Durability::Fsync)
                    .multipart(multipart),
            )
            .map_err(sink_error)?
        }
        SinkKind::R2 => {
            let bucket = required(config.bucket.as_ref(), &format!("{at}.bucket"))?;
            let account = config.account_id.clone().unwrap_or_default();
            let mut options = R2Options::new(account, bucket, credentials(config, at, secrets)?)
                .multipart(multipart);
            if let Some(jurisdiction) = &config.jurisdiction {
                options = options.jurisdiction(jurisdiction.clone());
            }
            if let Some(endpoint) = &config.endpoint {
                options = options.endpoint(endpoint.clone());
            }
            ObjectStoreSink::r2(options).map_err(sink_error)?
        }
        SinkKind::S3 => {
            let bucket = required(config.bucket.as_ref(), &format!("{at}.bucket"))?;
            let endpoint = required(config.endpoint.as_ref(), &format!("{at}.endpoint"))?;
            // An http:// endpoint in the file is the operator's explicit choice.
            let allow = if endpoint.starts_with("http://") {
                AllowHttp::Yes
            } else {
                AllowHttp::No
            };
            let mut options =
                S3Options::new(endpoint.clone(), bucket, credentials(config, at, secrets)?)
                    .allow_http(allow)
                    .multipart(multipart);
            if let Some(region) = &config.region {
                options = options.region(region.clone());
            }
            ObjectStoreSink::s3(options).map_err(sink_error)?
        }
    };
    Ok(Arc::new(sink))
}

fn credentials(config: &SinkConfig, at: &str, secrets: &Secrets) -> Result<Credentials, Error> {
    let key_id = secret(
        secrets,
        config.access_key_id_env.as_ref(),
        &format!("{at}.access_key_id_env"),
    )?;
    let secret_key = secret(
        secrets,
        config.secret_access_key_env.as_ref(),
        &format!("{at}.secret_access_key_env"),
    )?;
    Ok(Credentials::new(key_id, secret_key))
}

fn secret(secrets: &Secrets, var: Option<&String>, field: &str) -> Result<String, Error> {
    let var = required(var, field)?;
    secrets
        .get(var)
        .map(str::to_owned)
        .ok_or_else(|| missing_secret(field, var))
}

fn required<'a, T>(value: Option<&'a T>, field: &str) -> Result<&'a T, Error> {
    value.ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            format!("the configuration has no {field}; set it"),
        )
    })
}

/// A secret the configuration names was not among the [`Secrets`] given.
pub(crate) fn missing_secret(field: &str, var: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "{field} names the secret `{var}`, which was not provided; provide a value for `{var}` in the secrets"
        ),
    )
}

/// A `[[replicas]]` entry, built: where every backup is also written.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    /// What reports call it: its name, else `replicas[i]` (never a secret).
    pub(crate) label: String,
    pub(crate) sink: SharedSink,
    /// Days of backups it keeps (its own, else `[retention] keep_days`).
    pub(crate) keep_days: u32,
}

/// Shared handle type for the sink.
pub(crate) type SharedSink = Arc<dyn r2_sink::BackupSink>;
