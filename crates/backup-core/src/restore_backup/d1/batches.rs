//! The second pass of an import into D1: the staged statements cut into batches of bounded
//! size, each one an import of its own (atomic: D1 runs an import in one transaction), written
//! one at a time so the disk holds one batch beside the staged dump.
//!
//! The cut is deterministic (the same staged dump and limits give the same batches), which is
//! what lets an interrupted import resume at the batch that failed. A batch never starts with
//! a statement that continues a split row, and every batch starts with
//! `PRAGMA defer_foreign_keys=TRUE;` (D1 checks foreign keys at the end of each import).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::frames::{Frame, FrameReader};

/// What starts every batch.
const HEAD: &str = "PRAGMA defer_foreign_keys=TRUE;\n";

/// The bounds of one batch; a single statement group larger than them is a batch of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchLimits {
    /// Bytes of SQL.
    pub(super) bytes: u64,
    /// Statements.
    pub(super) statements: u64,
}

/// One batch, as cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Batch {
    /// From 1.
    pub(super) number: usize,
    /// Statements in it, its `PRAGMA` included.
    pub(super) statements: u64,
    /// Its size in bytes.
    pub(super) bytes: u64,
}

/// Cuts the staged statements of `ranges` into batches.
pub(super) struct Batches<'a> {
    reader: FrameReader<'a>,
    /// The first frame of the next batch, read already.
    pending: Option<Frame>,
    limits: BatchLimits,
    number: usize,
}

impl<'a> Batches<'a> {
    /// Batches of `ranges`; `texts` false only counts them (see [`count`]).
    pub(super) fn new(
        ranges: &'a [(std::path::PathBuf, u64, u64)],
        limits: BatchLimits,
        texts: bool,
    ) -> Self {
        Self {
            reader: FrameReader::new(ranges, texts),
            pending: None,
            limits,
            number: 0,
        }
    }

    /// Writes the next batch to `path` (or skips it when `path` is `None`); `None` once every
    /// statement is in a batch.
    pub(super) fn next_batch(&mut self, path: Option<&Path>) -> io::Result<Option<Batch>> {
        let mut out = match path {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        };
        if let Some(out) = &mut out {
            out.write_all(HEAD.as_bytes())?;
        }
        let mut batch = Batch {
            number: self.number + 1,
            statements: 1,
            bytes: HEAD.len() as u64,
        };
        let mut frames = 0u64;
        loop {
            let frame = match self.pending.take() {
                Some(frame) => frame,
                None => match self.reader.next_frame()? {
                    Some(frame) => frame,
                    None => break,
                },
            };
            let size = u64::from(frame.len) + 1;
            let full = batch.bytes + size > self.limits.bytes
                || batch.statements + 1 > self.limits.statements;
            if frames > 0 && !frame.continues && full {
                self.pending = Some(frame);
                break;
            }
            if let (Some(out), Some(sql)) = (&mut out, &frame.sql) {
                out.write_all(sql.as_bytes())?;
                out.write_all(b"\n")?;
            }
            frames += 1;
            batch.statements += 1;
            batch.bytes += size;
        }
        if let Some(out) = out {
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()?;
        }
        if frames == 0 {
            if let Some(path) = path {
                let _ = std::fs::remove_file(path);
            }
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(batch))
    }
}

/// Every batch of `ranges`, counted without writing any.
pub(super) fn count(
    ranges: &[(std::path::PathBuf, u64, u64)],
    limits: BatchLimits,
) -> io::Result<Vec<Batch>> {
    let mut batches = Batches::new(ranges, limits, false);
    let mut out = Vec::new();
    while let Some(batch) = batches.next_batch(None)? {
        out.push(batch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::frames::FrameWriter;
    use super::*;

    #[test]
    fn batches_are_bounded_and_keep_groups_whole() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("frames");
        let mut writer = FrameWriter::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let statements = [
            ("CREATE TABLE t (a);", false),
            ("INSERT INTO t VALUES(1);", false),
            ("INSERT INTO t VALUES('aaaa');", false),
            (
                "UPDATE t SET a = a || 'bbbb' WHERE rowid = last_insert_rowid();",
                true,
            ),
            (
                "UPDATE t SET a = a || 'cccc' WHERE rowid = last_insert_rowid();",
                true,
            ),
            ("INSERT INTO t VALUES(3);", false),
        ];
        for (sql, continues) in statements {
            writer
                .push(sql, continues)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let end = writer.position();
        writer.finish().unwrap_or_else(|e| panic!("{e}"));
        let ranges = vec![(path, 0, end)];
        let limits = BatchLimits {
            bytes: 100,
            statements: 1000,
        };
        let counted = count(&ranges, limits).unwrap_or_else(|e| panic!("{e}"));
        let mut batches = Batches::new(&ranges, limits, true);
        let mut texts = Vec::new();
        let file = dir.path().join("batch.sql");
        while let Some(batch) = batches
            .next_batch(Some(&file))
            .unwrap_or_else(|e| panic!("{e}"))
        {
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(text.len() as u64, batch.bytes);
            assert!(text.starts_with(HEAD), "{text}");
            texts.push(text);
        }
        assert_eq!(counted.len(), texts.len());
        // The split row's INSERT and both UPDATEs stay together, over the byte bound.
        let group = texts
            .iter()
            .find(|t| t.contains("'aaaa'"))
            .unwrap_or_else(|| panic!("{texts:?}"));
        assert!(
            group.contains("'bbbb'") && group.contains("'cccc'"),
            "{group}"
        );
        assert!(texts.iter().all(|t| !t[HEAD.len()..].starts_with("UPDATE")));
        assert_eq!(texts.concat().matches("INSERT").count(), 3);
        assert!(!file.exists(), "the empty last batch is removed");
    }
}
