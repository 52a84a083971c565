//! Naming the databases of a wrangler state directory.
//!
//! wrangler (miniflare) stores a local D1 database as
//! `.wrangler/state/v3/d1/miniflare-D1DatabaseObject/<object id>.sqlite`, where the object id
//! is derived from the database id: HMAC-SHA256 keyed with SHA-256 of the namespace's unique
//! key, as workerd names Durable Objects. The names live in the project's wrangler config
//! (`wrangler.toml`, `wrangler.json` or `wrangler.jsonc`), so a file whose id the config
//! declares is named after its `database_name`; others keep their file name.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The Durable Object namespace wrangler keeps D1 databases in.
pub(crate) const D1_NAMESPACE: &str = "miniflare-D1DatabaseObject";

/// The file stem wrangler gives the local copy of the database with `database_id`.
pub(crate) fn file_stem(database_id: &str) -> String {
    let key = Sha256::digest(D1_NAMESPACE.as_bytes());
    let mac = |data: &[u8]| -> Vec<u8> {
        match <Hmac<Sha256> as Mac>::new_from_slice(&key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes()[..16].to_vec()
            }
            // HMAC takes keys of any length; this arm is unreachable.
            Err(_) => Vec::new(),
        }
    };
    let name = mac(database_id.as_bytes());
    let check = mac(&name);
    hex::encode([name, check].concat())
}

/// `database_name` by file stem, for every database the project's wrangler config declares
/// (`d1_databases` at the top level and in every `env`; `database_id` and
/// `preview_database_id`). Empty when no config is found or it cannot be read.
pub(crate) fn declared_names(state: &Path) -> HashMap<String, String> {
    let Some(project) = project_dir(state) else {
        return HashMap::new();
    };
    let mut names = HashMap::new();
    for file in ["wrangler.toml", "wrangler.json", "wrangler.jsonc"] {
        let Ok(text) = std::fs::read_to_string(project.join(file)) else {
            continue;
        };
        let value = if file.ends_with("toml") {
            toml::from_str::<toml::Value>(&text)
                .ok()
                .and_then(|v| serde_json::to_value(v).ok())
        } else {
            serde_json::from_str::<serde_json::Value>(&strip_jsonc(&text)).ok()
        };
        if let Some(value) = value {
            collect(&value, &mut names);
        }
    }
    names
}

/// The folder holding `.wrangler`, found among `state`'s ancestors.
fn project_dir(state: &Path) -> Option<&Path> {
    state
        .ancestors()
        .find(|p| p.components().next_back() == Some(Component::Normal(".wrangler".as_ref())))
        .and_then(Path::parent)
}

/// Walks a wrangler config for `d1_databases` arrays, wherever they are (top level, envs).
fn collect(value: &serde_json::Value, names: &mut HashMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                if key == "d1_databases" {
                    for db in inner.as_array().into_iter().flatten() {
                        let Some(name) = db.get("database_name").and_then(|n| n.as_str()) else {
                            continue;
                        };
                        for field in ["database_id", "preview_database_id"] {
                            if let Some(id) = db.get(field).and_then(|i| i.as_str()) {
                                names
                                    .entry(file_stem(id))
                                    .or_insert_with(|| name.to_owned());
                            }
                        }
                    }
                } else {
                    collect(inner, names);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, names)),
        _ => {}
    }
}

/// JSON with comments and trailing commas (wrangler.jsonc) → JSON.
fn strip_jsonc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for skipped in chars.by_ref() {
                    if last == '*' && skipped == '/' {
                        break;
                    }
                    last = skipped;
                }
            }
            _ => out.push(c),
        }
    }
    drop_trailing_commas(&out)
}

fn drop_trailing_commas(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in json.char_indices() {
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if c == ',' && json[i + 1..].trim_start().starts_with(['}', ']']) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The SQLite files of a wrangler state directory (`.wrangler/state/v3/d1`, or its
/// `miniflare-D1DatabaseObject` folder), as `(name, path)` sorted by name. A database is named
/// after its `database_name` when the project's wrangler config declares its id, else after
/// its file name (see `crate::wrangler`).
pub(crate) fn wrangler_databases(state: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let nested = state.join(D1_NAMESPACE);
    let folder = if nested.is_dir() {
        nested
    } else {
        state.to_path_buf()
    };
    let entries = std::fs::read_dir(&folder).map_err(|e| {
        Error::local_io(
            format!(
                "cannot read the wrangler state directory {}; point wrangler_state at .wrangler/state/v3/d1 of a project that ran `wrangler d1 ... --local`",
                folder.display()
            ),
            e,
        )
    })?;
    let declared = declared_names(state);
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::local_io(format!("cannot read {}", folder.display()), e))?
            .path();
        let is_sqlite = path.extension().is_some_and(|e| e == "sqlite");
        let stem = path_stem(&path);
        // metadata.sqlite is miniflare's own bookkeeping, not a database.
        if is_sqlite && stem != "metadata" && path.is_file() {
            let name = declared
                .get(stem)
                .cloned()
                .unwrap_or_else(|| stem.to_owned());
            found.push((name, path));
        }
    }
    found.sort();
    // Two files declared under one name (an env's preview id, say): the later keeps its stem.
    let mut seen = std::collections::HashSet::new();
    for (name, path) in &mut found {
        if !seen.insert(name.clone()) {
            path_stem(path).clone_into(name);
        }
    }
    Ok(found)
}

fn path_stem(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stem_is_miniflares() {
        // The file the wrangler fixtures were exported from, for database id 000…0.
        assert_eq!(
            file_stem("00000000-0000-0000-0000-000000000000"),
            "9ba2b04bf514d9facfd57ed57d849e77241a7adc99d1c1545d06688b43d84248"
        );
    }

    #[test]
    fn names_come_from_toml_and_jsonc() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = dir.path().join(".wrangler/state/v3/d1");
        std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("wrangler.toml"),
            "[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"demo\"\ndatabase_id = \"00000000-0000-0000-0000-000000000000\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("wrangler.jsonc"),
            "{ // a comment with \"quotes\"\n \"env\": { \"staging\": { \"d1_databases\": [ { \"database_name\": \"stage\", /* x */ \"database_id\": \"a//b\", }, ], }, },\n}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let names = declared_names(&state);
        assert_eq!(
            names
                .get("9ba2b04bf514d9facfd57ed57d849e77241a7adc99d1c1545d06688b43d84248")
                .map(String::as_str),
            Some("demo")
        );
        assert_eq!(
            names.get(&file_stem("a//b")).map(String::as_str),
            Some("stage")
        );
    }
}
