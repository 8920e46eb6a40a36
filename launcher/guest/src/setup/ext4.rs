//! Detects an ext2/3/4 superblock on a disk, to decide whether it must be formatted.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Byte offset of `s_magic`: the superblock starts at 1024, the magic is 56 bytes into it.
pub const MAGIC_OFFSET: u64 = 1024 + 56;

/// The ext2/3/4 superblock magic, stored little-endian.
pub const MAGIC: u16 = 0xEF53;

/// True if `path` (a block device or image file) carries the ext superblock magic; short files are blank.
pub fn has_ext4_superblock(path: &Path) -> io::Result<bool> {
    let file = File::open(path)?;
    let mut magic = [0u8; 2];
    match file.read_exact_at(&mut magic, MAGIC_OFFSET) {
        Ok(()) => Ok(u16::from_le_bytes(magic) == MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::process::Command;

    #[test]
    fn blank_and_short_files_have_no_superblock() {
        let dir = TempDir::new("ext4");
        let blank = dir.path().join("blank.img");
        std::fs::write(&blank, vec![0u8; 4096]).unwrap();
        assert!(!has_ext4_superblock(&blank).unwrap());
        let short = dir.path().join("short.img");
        std::fs::write(&short, [0x53u8, 0xEF]).unwrap();
        assert!(!has_ext4_superblock(&short).unwrap());
        assert!(has_ext4_superblock(&dir.path().join("missing.img")).is_err());
    }

    #[test]
    fn hand_placed_magic_is_detected() {
        let dir = TempDir::new("ext4");
        let img = dir.path().join("magic.img");
        let mut bytes = vec![0u8; 2048];
        bytes[MAGIC_OFFSET as usize..MAGIC_OFFSET as usize + 2].copy_from_slice(&MAGIC.to_le_bytes());
        std::fs::write(&img, bytes).unwrap();
        assert!(has_ext4_superblock(&img).unwrap());
    }

    #[test]
    fn image_made_by_mke2fs_is_detected() {
        let Some(mke2fs) = ["/usr/sbin/mke2fs", "/sbin/mke2fs"].into_iter().find(|p| Path::new(p).exists()) else {
            eprintln!("skipped: mke2fs (e2fsprogs) is not installed");
            return;
        };
        let dir = TempDir::new("ext4");
        let img = dir.path().join("disk.img");
        File::create(&img).unwrap().set_len(8 << 20).unwrap();
        assert!(!has_ext4_superblock(&img).unwrap());
        let status = Command::new(mke2fs).args(["-q", "-F", "-t", "ext4", "-L", "dinv-docker"]).arg(&img).status().unwrap();
        assert!(status.success());
        assert!(has_ext4_superblock(&img).unwrap());
    }
}
