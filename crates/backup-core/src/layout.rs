//! The bucket layout: `<prefix>/<YYYY-MM-DD>/<db-name>.sql`, the manifest and verification
//! record beside each dump, and the leases in `<prefix>/_leases/<db-name>/`.
//!
//! The layout is a persisted format (operators, retention and restores read it), so it is
//! fixed: one function builds keys, and the checks here guarantee that every configured
//! prefix and database name yields a key inside its prefix.

use chrono::NaiveDate;

use crate::compression::Compression;
use crate::encryption::AGE_EXTENSION;
use crate::error::{Error, ErrorKind};

/// The object key of a database's dump for one date.
///
/// `prefix` is a configured prefix as [`Config`](crate::Config) holds it (validated and without
/// trailing `/`); database names are validated with the configuration.
pub fn dump_key(prefix: &str, date: NaiveDate, database: &str) -> String {
    format!("{}/{}.sql", date_prefix(prefix, date), database)
}

/// The object key of a database's dump for one date, compressed as `compression` says.
pub fn dump_key_for(
    prefix: &str,
    date: NaiveDate,
    database: &str,
    compression: Compression,
) -> String {
    format!(
        "{}/{}.{}",
        date_prefix(prefix, date),
        database,
        compression.extension()
    )
}

/// The object key of a database's dump for one date, compressed as `compression` says and
/// then encrypted with age: `<db>.sql.age`, `<db>.sql.zst.age`, `<db>.sql.gz.age`.
pub fn encrypted_dump_key_for(
    prefix: &str,
    date: NaiveDate,
    database: &str,
    compression: Compression,
) -> String {
    format!(
        "{}.{AGE_EXTENSION}",
        dump_key_for(prefix, date, database, compression)
    )
}

/// The key of the manifest beside a database's dump for one date.
pub fn manifest_key(prefix: &str, date: NaiveDate, database: &str) -> String {
    format!(
        "{}/{}{MANIFEST_SUFFIX}",
        date_prefix(prefix, date),
        database
    )
}

const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The key of the verification record beside a database's dump for one date: what the last
/// `verify` of that backup found.
pub fn verification_key(prefix: &str, date: NaiveDate, database: &str) -> String {
    format!(
        "{}/{}{VERIFICATION_SUFFIX}",
        date_prefix(prefix, date),
        database
    )
}

const VERIFICATION_SUFFIX: &str = ".verification.json";

/// What a key in the layout is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutKey {
    /// A dump, compressed as given.
    Dump(Compression),
    /// A manifest.
    Manifest,
    /// A verification record (written by `verify`, beside the manifest).
    Verification,
    /// A dump compressed as given, then encrypted with age (`.age` appended to the key).
    EncryptedDump(Compression),
}

impl LayoutKey {
    /// Whether the key is a dump, plain or encrypted.
    pub fn is_dump(&self) -> bool {
        matches!(self, LayoutKey::Dump(_) | LayoutKey::EncryptedDump(_))
    }

    /// A dump's compression; `None` for other keys.
    pub fn compression(&self) -> Option<Compression> {
        match self {
            LayoutKey::Dump(c) | LayoutKey::EncryptedDump(c) => Some(*c),
            LayoutKey::Manifest | LayoutKey::Verification => None,
        }
    }

    /// Whether the key is an encrypted dump.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, LayoutKey::EncryptedDump(_))
    }
}

/// Reads a key of the layout under `prefix`: its date, database name and kind. Keys that do
/// not match the layout exactly (other folders, other files, leases) give `None`, so nothing
/// outside the layout is ever taken for a backup.
pub fn parse_key(prefix: &str, key: &str) -> Option<(NaiveDate, String, LayoutKey)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let (date, file) = rest.split_once('/')?;
    if date.len() != 10 || file.contains('/') {
        return None;
    }
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let (name, kind) = if let Some(name) = file.strip_suffix(MANIFEST_SUFFIX) {
        (name, LayoutKey::Manifest)
    } else if let Some(name) = file.strip_suffix(VERIFICATION_SUFFIX) {
        (name, LayoutKey::Verification)
    } else {
        let (file, encrypted) = match file
            .strip_suffix(AGE_EXTENSION)
            .and_then(|f| f.strip_suffix('.'))
        {
            Some(inner) => (inner, true),
            None => (file, false),
        };
        [Compression::Zstd, Compression::Gzip, Compression::None]
            .into_iter()
            .find_map(|c| {
                file.strip_suffix(c.extension())
                    .and_then(|n| n.strip_suffix('.'))
                    .map(|n| {
                        let kind = if encrypted {
                            LayoutKey::EncryptedDump(c)
                        } else {
                            LayoutKey::Dump(c)
                        };
                        (n, kind)
                    })
            })?
    };
    check_database_name(name).ok()?;
    Some((date, name.to_owned(), kind))
}

/// The folder (without trailing `/`) holding the lease generations of `database` under
/// `prefix`: `<prefix>/_leases/<db-name>`. It is outside the date layout (no date folder is
/// named `_leases`), so [`parse_key`] never takes a lease for a backup and retention never
/// sees one.
pub(crate) fn lease_dir(prefix: &str, database: &str) -> String {
    format!("{prefix}/{LEASES_FOLDER}/{database}")
}

const LEASES_FOLDER: &str = "_leases";

/// The key of one lease generation in `dir` (from [`lease_dir`]): the generation zero-padded
/// to 20 digits, so keys list in generation order.
pub(crate) fn lease_key(dir: &str, generation: u64) -> String {
    format!("{dir}/{generation:020}.json")
}

/// The generation a key of [`lease_dir`]`/` names; `None` for any other key.
pub(crate) fn lease_generation(dir: &str, key: &str) -> Option<u64> {
    key.strip_prefix(dir)?
        .strip_prefix('/')?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// The folder (with trailing `/`) that holds every dump of `prefix` for `date`.
pub fn date_prefix(prefix: &str, date: NaiveDate) -> String {
    format!("{prefix}/{}", date.format("%Y-%m-%d"))
}

/// Normalizes a configured prefix: trailing slashes are dropped; empty prefixes, absolute
/// prefixes, `.`/`..` segments and empty segments are refused (they would write outside the
/// intended folder or collide with other prefixes) with an error of kind
/// [`ErrorKind::Config`] saying why.
pub(crate) fn normalize_prefix(prefix: &str) -> Result<String, Error> {
    let refuse = |why: String| Err(Error::new(ErrorKind::Config, why));
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return refuse("is empty: every account needs its own folder in the bucket".into());
    }
    if trimmed.starts_with('/') {
        return refuse(format!(
            "{prefix:?} starts with '/': keys are relative to the bucket"
        ));
    }
    if trimmed.chars().any(char::is_control) || trimmed.contains('\\') {
        return refuse(format!("{prefix:?} contains control characters or '\\'"));
    }
    for segment in trimmed.split('/') {
        match segment {
            "" => return refuse(format!("{prefix:?} contains an empty segment ('//')")),
            "." | ".." => return refuse(format!("{prefix:?} contains a {segment:?} segment")),
            _ => {}
        }
    }
    Ok(trimmed.to_owned())
}

/// Checks that a database name can be used as a file name in the layout (an error of kind
/// [`ErrorKind::Config`] when not).
pub(crate) fn check_database_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!("{name:?} cannot be used as a file name in the bucket layout"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn keys_follow_the_seed_layout() {
        assert_eq!(
            dump_key("d1", date("2026-11-30"), "ops-db"),
            "d1/2026-11-30/ops-db.sql"
        );
        assert_eq!(
            dump_key("rtopacks", date("2026-01-05"), "rto-abs-db"),
            "rtopacks/2026-01-05/rto-abs-db.sql"
        );
    }

    #[test]
    fn keys_parse_back_and_strangers_do_not() {
        let d = date("2026-11-30");
        for compression in [Compression::None, Compression::Zstd, Compression::Gzip] {
            let key = dump_key_for("d1", d, "ops.db", compression);
            assert_eq!(
                parse_key("d1", &key),
                Some((d, "ops.db".to_owned(), LayoutKey::Dump(compression)))
            );
            let key = encrypted_dump_key_for("d1", d, "ops.db", compression);
            assert_eq!(
                key,
                format!("{}.age", dump_key_for("d1", d, "ops.db", compression))
            );
            assert_eq!(
                parse_key("d1", &key),
                Some((
                    d,
                    "ops.db".to_owned(),
                    LayoutKey::EncryptedDump(compression)
                ))
            );
        }
        assert_eq!(
            encrypted_dump_key_for("d1", d, "ops-db", Compression::Zstd),
            "d1/2026-11-30/ops-db.sql.zst.age"
        );
        assert_eq!(
            parse_key("d1", &manifest_key("d1", d, "ops-db")),
            Some((d, "ops-db".to_owned(), LayoutKey::Manifest))
        );
        assert_eq!(
            parse_key("d1", &verification_key("d1", d, "ops-db")),
            Some((d, "ops-db".to_owned(), LayoutKey::Verification))
        );
        // A database whose name ends in `.verification` keeps its own manifest.
        assert_eq!(
            parse_key("d1", &manifest_key("d1", d, "x.verification")),
            Some((d, "x.verification".to_owned(), LayoutKey::Manifest))
        );
        for stranger in [
            "d1/2026-11-30/ops-db.txt",
            "d1/2026-11-30/sub/ops-db.sql",
            "d1/_leases/ops-db/1.json",
            "d1/2026-13-01/ops-db.sql",
            "d10/2026-11-30/ops-db.sql",
            "other/2026-11-30/ops-db.sql",
            "d1/2026-11-30/.sql",
            "d1/2026-11-30/a b.sql",
            "d1/2026-11-30/ops-db.age",
            "d1/2026-11-30/ops-db.sql.age.age",
            "d1/2026-11-30/ops-db.sqlage",
        ] {
            assert_eq!(parse_key("d1", stranger), None, "{stranger}");
        }
    }

    #[test]
    fn lease_keys_parse_back_and_stay_outside_the_date_layout() {
        let dir = lease_dir("d1", "ops-db");
        assert_eq!(dir, "d1/_leases/ops-db");
        let key = lease_key(&dir, 7);
        assert_eq!(key, "d1/_leases/ops-db/00000000000000000007.json");
        assert_eq!(lease_generation(&dir, &key), Some(7));
        assert_eq!(parse_key("d1", &key), None);
        for stranger in [
            "d1/_leases/ops-db/x.json",
            "d1/_leases/ops-db2/1.json",
            "d1/_leases/ops-db/1.txt",
        ] {
            assert_eq!(lease_generation(&dir, stranger), None, "{stranger}");
        }
    }

    #[test]
    fn prefixes() {
        fn check(input: &str, expected: Result<&str, ()>) {
            let got = normalize_prefix(input).map_err(|_| ());
            assert_eq!(
                got.as_deref(),
                expected.as_deref().map_err(|()| &()),
                "{input:?}"
            );
        }
        check("d1", Ok("d1"));
        check("d1/", Ok("d1"));
        check("backups/d1", Ok("backups/d1"));
        check("", Err(()));
        check("/", Err(()));
        check("/d1", Err(()));
        check("a/../b", Err(()));
        check("..", Err(()));
        check("a//b", Err(()));
        check("./a", Err(()));
    }

    #[test]
    fn database_names() {
        for ok in ["ops-db", "rto_nrt.db", "A1"] {
            assert!(check_database_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(check_database_name(bad).is_err(), "{bad}");
        }
    }
}
