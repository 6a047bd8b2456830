//! The trace: one JSON line per event of the run, hashed as it is written. Two runs with the
//! same scenario and seed give the same lines, so the same `trace_hash`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::SimError;

/// Hashes every line and, when given a file, writes it there. A trace that is [`off`]
/// records nothing, and callers skip formatting its lines (see [`Trace::enabled`]): benchmarks
/// measure the simulation, not the trace.
///
/// [`off`]: Trace::off
pub struct Trace {
    enabled: bool,
    hash: Sha256,
    out: Option<BufWriter<File>>,
    lines: u64,
    failed: Option<std::io::Error>,
}

impl Trace {
    /// A trace that is hashed only.
    pub fn hash_only() -> Self {
        Self {
            enabled: true,
            hash: Sha256::new(),
            out: None,
            lines: 0,
            failed: None,
        }
    }

    /// No trace at all: no line is formatted, hashed or written, and the hash is empty.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::hash_only()
        }
    }

    /// Whether lines are recorded; when not, callers need not format them.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A trace written to `path` (`trace.jsonl`).
    pub fn to_file(path: &Path) -> Result<Self, SimError> {
        let file = File::create(path).map_err(|source| SimError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            ..Self::hash_only()
        })
    }

    /// Records one line (a JSON object, without the newline).
    pub fn line(&mut self, line: &str) {
        if !self.enabled {
            return;
        }
        self.hash.update(line.as_bytes());
        self.hash.update(b"\n");
        self.lines += 1;
        if let Some(out) = &mut self.out
            && self.failed.is_none()
            && let Err(e) = out
                .write_all(line.as_bytes())
                .and_then(|_| out.write_all(b"\n"))
        {
            self.failed = Some(e);
        }
    }

    /// Lines recorded.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes the file and returns the hex SHA-256 of all lines (empty when off).
    pub fn finish(&mut self, path: Option<&Path>) -> Result<String, SimError> {
        if let Some(out) = &mut self.out
            && let Err(e) = out.flush()
        {
            self.failed.get_or_insert(e);
        }
        if let Some(e) = self.failed.take() {
            return Err(SimError::Write {
                path: path.map(Path::to_path_buf).unwrap_or_default(),
                source: e,
            });
        }
        if !self.enabled {
            return Ok(String::new());
        }
        Ok(hex::encode(self.hash.clone().finalize()))
    }
}
