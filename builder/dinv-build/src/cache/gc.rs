//! What the cache holds, and pruning it (`dinv-build cache du|prune`).
//!
//! Every successful build records the entries it used as a root,
//! `roots/<id>.json`, one per output directory (a `fetch`, one per recipe),
//! each rebuild replacing its root's record. Pruning keeps the roots
//! recorded within `--older-than` days and every entry they name (and the
//! pieces their layer records list), and removes every other entry: a
//! package an older build used, layers of trees no build makes any more,
//! indexes of mirrors no recipe names. What is removed can always be made
//! again from the mirrors; an `--offline` rebuild of a kept root needs
//! nothing that was removed.
//!
//! Pruning holds `locks/gc.lock` exclusively, which every open cache holds
//! shared: it waits for running builds (or, without waiting, says that one
//! runs), and builds that start meanwhile wait for it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{lock_file, Bucket};

/// Files and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub files: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// What the cache holds, per bucket of entries.
#[derive(Clone, Debug, Serialize)]
pub struct Usage {
    pub root: PathBuf,
    pub buckets: Vec<(&'static str, Count)>,
    pub total: Count,
    /// Recorded roots (successful builds and fetches).
    pub roots: usize,
}

/// What a prune removed and kept.
#[derive(Clone, Debug, Serialize)]
pub struct Pruned {
    pub root: PathBuf,
    pub dry_run: bool,
    /// Roots kept (recorded within the age limit) and removed.
    pub roots_kept: usize,
    pub roots_removed: usize,
    /// Entries removed, per bucket.
    pub removed: Vec<(&'static str, Count)>,
    pub removed_total: Count,
    /// What is left.
    pub kept_total: Count,
}

/// Every file below `dir`, with its size.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// What the cache at `root` holds.
pub fn usage(root: &Path) -> io::Result<Usage> {
    if !root.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no cache here"));
    }
    let mut total = Count::default();
    let buckets = Bucket::ENTRIES
        .iter()
        .map(|b| {
            let mut c = Count::default();
            for (_, len) in files(&root.join(b.dir())) {
                c.add(len);
                total.add(len);
            }
            (b.dir(), c)
        })
        .collect();
    let roots = files(&root.join(Bucket::Roots.dir())).len();
    Ok(Usage { root: root.to_path_buf(), buckets, total, roots })
}

/// The entries a root names (paths relative to the cache root).
fn root_entries(path: &Path) -> Vec<String> {
    let Ok(text) = fs::read(path) else { return Vec::new() };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else { return Vec::new() };
    v["entries"].as_array().map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// The pieces a layer record lists (its first line is a checksum, then JSON).
fn record_pieces(path: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else { return Vec::new() };
    let json = text.split_once('\n').map_or("", |(_, rest)| rest);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return Vec::new() };
    let pieces = v["pieces"].as_array().cloned().unwrap_or_default();
    pieces
        .iter()
        .filter_map(|k| k.as_str())
        .filter(|k| k.len() >= 2 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|k| format!("{}/{}/{k}", Bucket::Pieces.dir(), &k[..2]))
        .collect()
}

/// Prunes the cache at `root`: keeps the roots recorded within `max_age`
/// and what they use, removes everything else (nothing with `dry_run`).
/// Waits for running builds when `wait`, else fails with `WouldBlock`.
pub fn prune(root: &Path, max_age: Duration, dry_run: bool, wait: bool) -> io::Result<Pruned> {
    if !root.join(Bucket::Locks.dir()).is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no cache here"));
    }
    let lock = lock_file(root)?;
    if lock.try_lock().is_err() {
        if !wait {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "a build is using the cache"));
        }
        tracing::info!("cache: waiting for the builds using the cache to finish");
        lock.lock()?;
    }
    let entry_dirs = Bucket::ENTRIES.map(|b| root.join(b.dir()));
    let layers = root.join(Bucket::Layers.dir());
    let now = SystemTime::now();
    let (mut roots_kept, mut roots_removed) = (0, 0);
    let mut live: BTreeSet<PathBuf> = BTreeSet::new();
    for (path, _) in files(&root.join(Bucket::Roots.dir())) {
        let age = fs::metadata(&path).and_then(|m| m.modified()).ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
        if age > max_age {
            roots_removed += 1;
            if !dry_run {
                fs::remove_file(&path)?;
            }
            continue;
        }
        roots_kept += 1;
        for e in root_entries(&path) {
            let p = root.join(&e);
            // Only entries inside the buckets count (a damaged root names nothing else).
            if entry_dirs.iter().any(|d| p.starts_with(d)) && !e.contains("..") {
                if p.starts_with(&layers) {
                    live.extend(record_pieces(&p).into_iter().map(|k| root.join(k)));
                }
                live.insert(p);
            }
        }
    }
    let (mut removed_total, mut kept_total) = (Count::default(), Count::default());
    let mut removed = Vec::new();
    for (b, bucket_dir) in Bucket::ENTRIES.iter().zip(&entry_dirs) {
        let mut c = Count::default();
        for (path, len) in files(bucket_dir) {
            if live.contains(&path) {
                kept_total.add(len);
                continue;
            }
            c.add(len);
            removed_total.add(len);
            if !dry_run {
                fs::remove_file(&path)?;
                // Shard directories left empty go too (never the bucket).
                let mut dir = path.parent();
                while let Some(d) = dir.filter(|d| d != bucket_dir) {
                    if fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
        }
        removed.push((b.dir(), c));
    }
    let _ = lock.unlock();
    Ok(Pruned { root: root.to_path_buf(), dry_run, roots_kept, roots_removed, removed, removed_total, kept_total })
}

#[cfg(test)]
mod tests {
    use super::super::Cache;
    use super::*;

    fn put(path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn prune_keeps_what_recorded_roots_use_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let c = Cache::open(root).unwrap();
        let blob = c.blob_path("sha256", "aa11");
        put(&blob, b"kept blob");
        let unpacked = c.unpacked_path("deb-aa11");
        put(&unpacked, b"kept archive");
        let record = c.layer_record_path("bb22");
        put(&record, b"checksum\n{\"pieces\": [\"cc33\", \"../../escape\"]}");
        let piece = root.join("pieces/cc/cc33");
        put(&piece, b"piece of a kept layer");
        c.write_root("out/a", serde_json::json!({"out": "out/a"})).unwrap();
        drop(c);
        // Entries nobody's root names: another handle's, never recorded.
        let other = Cache::open(root).unwrap();
        let stale = [other.blob_path("sha256", "dd44"), other.index_path("old-index"), root.join("pieces/ee/ee55")];
        for p in &stale {
            put(p, b"stale");
        }
        drop(other);

        let before = usage(root).unwrap();
        assert_eq!((before.total.files, before.roots), (7, 1));
        let dry = prune(root, Duration::from_secs(3600), true, false).unwrap();
        assert_eq!((dry.removed_total, dry.roots_kept), (Count { files: 3, bytes: 15 }, 1));
        assert!(stale.iter().all(|p| p.exists()), "a dry run removes nothing");

        let done = prune(root, Duration::from_secs(3600), false, false).unwrap();
        assert_eq!(done.removed_total, Count { files: 3, bytes: 15 });
        assert_eq!(done.kept_total.files, 4);
        assert!(stale.iter().all(|p| !p.exists()));
        assert!(!root.join("pieces/ee").exists(), "the empty shard went too");
        for p in [&blob, &unpacked, &record, &piece] {
            assert!(p.exists(), "{} was removed", p.display());
        }
        assert!(root.join("pieces").is_dir() && root.join("indexes").is_dir());

        // Roots older than the limit go, and with them everything.
        let all = prune(root, Duration::ZERO, false, false).unwrap();
        assert_eq!((all.roots_removed, all.removed_total.files, all.kept_total.files), (1, 4, 0));
        assert_eq!(usage(root).unwrap().total, Count::default());
    }

    #[test]
    fn prune_waits_for_open_caches_and_they_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let e = prune(dir.path(), Duration::ZERO, false, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(c);
        // While a prune holds the lock, opening the cache waits.
        let lock = lock_file(dir.path()).unwrap();
        lock.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _c = Cache::open(&root).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "the cache opened during a prune");
        lock.unlock().unwrap();
        rx.recv_timeout(Duration::from_secs(10)).expect("the cache opens once the prune is over");
        assert_eq!(prune(&dir.path().join("nothing"), Duration::ZERO, false, false).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_root_records_only_existing_entries_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        put(&c.blob_path("sha256", "aa"), b"x");
        let _missing = c.blob_path("sha256", "bb");
        c.write_root("out/a", serde_json::json!({})).unwrap();
        let roots = files(&dir.path().join("roots"));
        assert_eq!(roots.len(), 1);
        assert_eq!(root_entries(&roots[0].0), ["blobs/sha256/aa/aa"]);
        c.write_root("out/a", serde_json::json!({})).unwrap();
        c.write_root("out/b", serde_json::json!({})).unwrap();
        assert_eq!(files(&dir.path().join("roots")).len(), 2);
    }
}
