//! What a storage failure says about the disk. RocksDB reports a full disk once, from the write
//! that hit it; later calls only say "Writer has previous error". The node stops on either, and
//! its last words name the disk's free space so that the cause is plain.

use std::path::Path;

/// Below this many bytes free, the disk is called full: RocksDB preallocates its files, so it
/// fails with some space still left.
const NEARLY_FULL: u64 = 16 << 20;

/// Bytes available to this process on the filesystem holding `dir`.
pub fn available_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points at writable memory of
    // the right type; statvfs fills it on success and we read it only then.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so `stat` is initialized.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Adds the disk's state to an error that stops the node.
pub fn explain(error: anyhow::Error, dir: &Path) -> anyhow::Error {
    match available_bytes(dir) {
        Ok(free) if free < NEARLY_FULL => error.context(format!(
            "no space left on the disk holding {} ({} KiB free): free some space and start \
             the node again; everything it acknowledged is kept",
            dir.display(),
            free >> 10
        )),
        Ok(free) => error.context(format!(
            "the database in {} failed ({} MiB free on its disk)",
            dir.display(),
            free >> 20
        )),
        Err(_) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_has_some_space_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(available_bytes(dir.path()).unwrap() > 0);
        assert!(available_bytes(&dir.path().join("missing")).is_err());
        let said = format!("{:#}", explain(anyhow::anyhow!("boom"), dir.path()));
        assert!(said.contains("boom") && said.contains(&dir.path().display().to_string()));
    }
}
