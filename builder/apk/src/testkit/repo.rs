//! Repository directories: `<root>/<repo>/<arch>/APKINDEX.tar.gz` plus
//! `<name>-<version>.apk` files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{build_apk, build_index, ApkOptions, IndexOptions, PackageSpec, TarStyle, TestKey};
use crate::IndexEntry;

/// What [`write_repository`] wrote.
#[derive(Clone, Debug)]
pub struct WrittenRepo {
    /// `<root>/<repo>/<arch>`.
    pub dir: PathBuf,
    pub index_path: PathBuf,
    /// Index entries and package file paths, in spec order.
    pub packages: Vec<(IndexEntry, PathBuf)>,
}

/// Builds every package (signed with `key`) and a signed index over them,
/// in Alpine v3.22's PAX-headed style.
pub fn write_repository(root: &Path, repo: &str, arch: &str, specs: &[PackageSpec], key: &TestKey) -> io::Result<WrittenRepo> {
    write_repository_styled(root, repo, arch, specs, key, TarStyle::Pax)
}

/// [`write_repository`] with every member in the given tar header style.
pub fn write_repository_styled(root: &Path, repo: &str, arch: &str, specs: &[PackageSpec], key: &TestKey, style: TarStyle) -> io::Result<WrittenRepo> {
    let dir = root.join(repo).join(arch);
    fs::create_dir_all(&dir)?;
    let mut packages = Vec::with_capacity(specs.len());
    for spec in specs {
        let built = build_apk(
            spec,
            &ApkOptions {
                style,
                ..ApkOptions::signed(key)
            },
        );
        let entry = built.index_entry();
        let path = dir.join(entry.file_name());
        fs::write(&path, &built.bytes)?;
        packages.push((entry, path));
    }
    let entries: Vec<IndexEntry> = packages.iter().map(|(e, _)| e.clone()).collect();
    let index_path = dir.join("APKINDEX.tar.gz");
    fs::write(
        &index_path,
        build_index(
            &entries,
            &IndexOptions {
                style,
                ..IndexOptions::signed(key)
            },
        ),
    )?;
    Ok(WrittenRepo { dir, index_path, packages })
}
