//! The staged dump's private file format: statements framed as `[u32 length][u8 flags][SQL]`,
//! so that the batches can be cut again, exactly, without parsing SQL a second time, and
//! without ever separating statements that must run together.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The frame continues the group of the one before it (an `UPDATE` completing a long row):
/// no batch starts with it.
const CONTINUES: u8 = 1;

/// Appends framed statements to a file, counting its length.
pub(super) struct FrameWriter {
    out: BufWriter<File>,
    len: u64,
}

impl FrameWriter {
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::new(File::create(path)?),
            len: 0,
        })
    }

    /// Where the next frame starts.
    pub(super) fn position(&self) -> u64 {
        self.len
    }

    /// Appends `sql`; `continues` keeps it in the batch of the frame before it.
    pub(super) fn push(&mut self, sql: &str, continues: bool) -> io::Result<()> {
        let len = u32::try_from(sql.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a statement over 4 GiB"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out
            .write_all(&[if continues { CONTINUES } else { 0 }])?;
        self.out.write_all(sql.as_bytes())?;
        self.len += 5 + u64::from(len);
        Ok(())
    }

    pub(super) fn finish(self) -> io::Result<()> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    }
}

/// One frame read back: its statement's length, whether it continues a group, and (unless
/// skipped) its text.
pub(super) struct Frame {
    pub(super) len: u32,
    pub(super) continues: bool,
    pub(super) sql: Option<String>,
}

/// Reads the frames of byte ranges of staged files, in the order given.
pub(super) struct FrameReader<'a> {
    ranges: std::slice::Iter<'a, (std::path::PathBuf, u64, u64)>,
    current: Option<(BufReader<File>, u64)>,
    /// Read texts, or only lengths (to count batches).
    texts: bool,
}

impl<'a> FrameReader<'a> {
    /// Frames of `ranges`: `(file, start, end)` each.
    pub(super) fn new(ranges: &'a [(std::path::PathBuf, u64, u64)], texts: bool) -> Self {
        Self {
            ranges: ranges.iter(),
            current: None,
            texts,
        }
    }

    /// The next frame, `None` at the end of the last range.
    pub(super) fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some((reader, left)) = &mut self.current
                && *left > 0
            {
                let mut head = [0u8; 5];
                reader.read_exact(&mut head)?;
                let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                *left = left.saturating_sub(5 + u64::from(len));
                let sql =
                    if self.texts {
                        let mut bytes = vec![0u8; len as usize];
                        reader.read_exact(&mut bytes)?;
                        Some(String::from_utf8(bytes).map_err(|e| {
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string())
                        })?)
                    } else {
                        reader.seek_relative(i64::from(len))?;
                        None
                    };
                return Ok(Some(Frame {
                    len,
                    continues: head[4] & CONTINUES != 0,
                    sql,
                }));
            }
            let Some((path, start, end)) = self.ranges.next() else {
                return Ok(None);
            };
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(*start))?;
            self.current = Some((BufReader::new(file), end - start));
        }
    }
}
