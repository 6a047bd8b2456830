//! Seed corpora from real encodings.
//!
//! Each target's `init` makes a few real inputs (envelopes of a real group, real sync
//! messages, a real invite code...) and, when `CHORUS_FUZZ_SEEDS` names a directory, writes
//! them there before libFuzzer reads its corpus. The Makefile points it at the target's
//! corpus directory, so seeds always match the current encoders and nothing binary is kept in
//! git. Files are named by the SHA-256 of their content, so writing them again is a no-op.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// The environment variable naming the directory seeds are written to.
pub const SEEDS_DIR_VAR: &str = "CHORUS_FUZZ_SEEDS";

/// Writes `inputs` as seed files if [`SEEDS_DIR_VAR`] is set. A failure to write is reported
/// and the run goes on without seeds (they only speed the fuzzer up).
pub fn write<I, B>(inputs: I)
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let Some(dir) = std::env::var_os(SEEDS_DIR_VAR).map(PathBuf::from) else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("seeds: cannot create {}: {e}", dir.display());
        return;
    }
    let mut count = 0;
    for input in inputs {
        let bytes = input.as_ref();
        let name = hex::encode(Sha256::digest(bytes));
        match std::fs::write(dir.join(name), bytes) {
            Ok(()) => count += 1,
            Err(e) => eprintln!("seeds: cannot write to {}: {e}", dir.display()),
        }
    }
    eprintln!("seeds: {count} real inputs written to {}", dir.display());
}
