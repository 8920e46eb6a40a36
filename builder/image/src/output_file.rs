//! One file-mode policy for every output: files appear as `open(2)` with
//! mode 0666 would make them (0644 under the usual umask 022), directories
//! as 0777 would, even though they are written through temporary files,
//! which the `tempfile` crate otherwise creates 0600 (and directories 0700).

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A temporary file in `dir` that becomes an output by `persist`, with the
/// mode of any other output file (0666 less the umask).
pub fn output_temp_file(dir: &Path, prefix: &str) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new().prefix(prefix).permissions(Permissions::from_mode(0o666)).tempfile_in(dir)
}

/// A temporary directory in `dir` that becomes an output directory by
/// rename, with the mode of any other directory (0777 less the umask).
pub fn output_temp_dir(dir: &Path, prefix: &str) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).permissions(Permissions::from_mode(0o777)).tempdir_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_umask_like_plain_files() {
        let d = tempfile::tempdir().unwrap();
        // The umask is process-wide: read it without changing it for long.
        let umask = unsafe {
            let u = libc_umask(0o022);
            libc_umask(u);
            u
        };
        let f = output_temp_file(d.path(), ".t-").unwrap();
        assert_eq!(f.as_file().metadata().unwrap().permissions().mode() & 0o777, 0o666 & !umask);
        let t = output_temp_dir(d.path(), ".d-").unwrap();
        assert_eq!(std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777, 0o777 & !umask);
    }

    extern "C" {
        #[link_name = "umask"]
        fn libc_umask(mask: u32) -> u32;
    }
}
