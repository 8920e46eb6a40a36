//! The content-addressed cache shared by concurrent builds. [`Bucket`]
//! owns the layout under the cache root:
//! - `blobs/<algo>/<hh>/<hex>`: package files by the checksum their signed
//!   index gives (`apk-q1` for apk, `sha256` for deb);
//! - `unpacked/<key>.tar`: decompressed data archives that tree contents
//!   point into (`apk-<q1 hex>`, `deb-<sha256>`), each followed by the
//!   BLAKE3 of the archive (checked on every read);
//! - `indexes/<name>`: index files, named by a digest of their URL (for
//!   offline builds) or, for Debian `Packages`, by their signed SHA-256;
//! - `layers/<hh>/<fingerprint>.json`: how a layer was written (digests,
//!   piece keys), keyed by a fingerprint of its tree and settings, after a
//!   line with the BLAKE3 of the JSON;
//! - `pieces/<hh>/<key>`: compressed pieces of image layers, keyed by the
//!   digest of their uncompressed bytes and the compression settings, each
//!   prefixed by the SHA-256 of the compressed bytes (checked on every read);
//! - `locks/<name>.lock`: advisory file locks (`gc.lock`: every open cache
//!   holds it shared, `cache prune` exclusively);
//! - `roots/<id>.json`: what the last successful build of one output
//!   directory (or `fetch` of one recipe) used, which `cache prune` keeps
//!   (see [`gc`]);
//! - `tmp/`: files being written, named `<pid>-…` after the build that
//!   writes them; opening the cache removes those of builds that are gone.
//!
//! Every file appears by rename of a finished temporary file, so an
//! interrupted download never leaves a partial entry behind.

pub mod gc;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The cache's directories, one per kind of entry (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Blobs,
    Unpacked,
    Indexes,
    Layers,
    Pieces,
    Locks,
    Tmp,
    Roots,
}

impl Bucket {
    const ALL: [Bucket; 8] = [Bucket::Blobs, Bucket::Unpacked, Bucket::Indexes, Bucket::Layers, Bucket::Pieces, Bucket::Locks, Bucket::Tmp, Bucket::Roots];
    /// The buckets of entries (what `cache prune` may remove).
    pub const ENTRIES: [Bucket; 5] = [Bucket::Blobs, Bucket::Unpacked, Bucket::Indexes, Bucket::Layers, Bucket::Pieces];

    /// The directory's name under the cache root.
    pub fn dir(self) -> &'static str {
        match self {
            Bucket::Blobs => "blobs",
            Bucket::Unpacked => "unpacked",
            Bucket::Indexes => "indexes",
            Bucket::Layers => "layers",
            Bucket::Pieces => "pieces",
            Bucket::Locks => "locks",
            Bucket::Tmp => "tmp",
            Bucket::Roots => "roots",
        }
    }
}

/// The cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
    /// Every entry path handed out, for this build's root (see [`Cache::write_root`]).
    used: Arc<Mutex<BTreeSet<PathBuf>>>,
    /// `locks/gc.lock`, held shared while the cache is open.
    _gc: Arc<File>,
}

/// A held advisory lock; released on drop.
pub struct CacheLock {
    file: File,
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl Cache {
    /// The cache root: `DINV_CACHE_DIR`, else `$XDG_CACHE_HOME/dinv-build`,
    /// else `~/.cache/dinv-build`.
    pub fn default_root() -> PathBuf {
        if let Some(d) = std::env::var_os("DINV_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("dinv-build");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache/dinv-build"),
            None => PathBuf::from(".dinv-cache"),
        }
    }

    /// Opens (creating) a cache at `root`, and removes temporary files
    /// left by builds that were killed.
    pub fn open(root: &Path) -> io::Result<Cache> {
        for b in Bucket::ALL {
            fs::create_dir_all(root.join(b.dir()))?;
        }
        // Shared: builds run side by side; `cache prune` waits for them all.
        let gc = lock_file(root)?;
        if gc.try_lock_shared().is_err() {
            tracing::info!("cache: waiting for `dinv-build cache prune` to finish");
            gc.lock_shared()?;
        }
        let cache = Cache { root: root.to_path_buf(), used: Arc::default(), _gc: Arc::new(gc) };
        cache.remove_stale_temp_files();
        Ok(cache)
    }

    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(self.bucket(Bucket::Tmp)) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            // Files without a process id come from older versions: stale too.
            // A writer holds a lock on its file, which also protects it from
            // a build in another PID namespace sharing this cache.
            let unlocked = File::open(e.path()).is_ok_and(|f| f.try_lock().is_ok());
            if pid.is_some_and(process_alive) || !unlocked {
                continue;
            }
            tracing::info!("cache: removing {} (left by an interrupted build)", e.path().display());
            let _ = fs::remove_file(e.path());
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket(&self, b: Bucket) -> PathBuf {
        self.root.join(b.dir())
    }

    /// Where a blob with this checksum lives.
    pub fn blob_path(&self, algo: &str, hex: &str) -> PathBuf {
        let shard = &hex[..hex.len().min(2)];
        self.used(self.bucket(Bucket::Blobs).join(algo).join(shard).join(hex))
    }

    /// Where the decompressed data archive for `key` lives.
    pub fn unpacked_path(&self, key: &str) -> PathBuf {
        self.used(self.bucket(Bucket::Unpacked).join(format!("{key}.tar")))
    }

    /// Where an index file named `name` lives.
    pub fn index_path(&self, name: &str) -> PathBuf {
        self.used(self.bucket(Bucket::Indexes).join(name))
    }

    /// Where the server's validators (ETag, Last-Modified) of the index
    /// file named `name` live.
    pub fn index_validators_path(&self, name: &str) -> PathBuf {
        self.used(self.bucket(Bucket::Indexes).join(format!("{name}.validators")))
    }

    /// Where the record of a layer with this fingerprint (hex) lives.
    pub fn layer_record_path(&self, fingerprint: &str) -> PathBuf {
        self.used(self.bucket(Bucket::Layers).join(&fingerprint[..fingerprint.len().min(2)]).join(format!("{fingerprint}.json")))
    }

    /// The directory of unpacked data archives (content-addressed by the
    /// package checksum, so a range of one names its bytes).
    pub fn unpacked_dir(&self) -> PathBuf {
        self.bucket(Bucket::Unpacked)
    }

    /// Where a compressed layer piece with this key (hex) lives.
    pub fn piece_path(&self, key: &str) -> PathBuf {
        self.used(self.bucket(Bucket::Pieces).join(&key[..key.len().min(2)]).join(key))
    }

    /// Notes that this invocation uses the entry at `path`.
    fn used(&self, path: PathBuf) -> PathBuf {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone());
        path
    }

    /// Records the entries this invocation used, and that exist, as the
    /// root `id` (replacing that root's previous record): `cache prune`
    /// keeps them. `about` says whose root it is (output directory, recipe).
    pub fn write_root(&self, id: &str, about: serde_json::Value) -> io::Result<()> {
        let entries: Vec<String> = {
            let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            used.iter().filter(|p| p.is_file()).filter_map(|p| p.strip_prefix(&self.root).ok()).map(|p| p.to_string_lossy().into_owned()).collect()
        };
        let record = serde_json::json!({ "about": about, "entries": entries });
        let dest = self.bucket(Bucket::Roots).join(format!("{}.json", root_id(id)));
        self.write_atomic(&dest, |f| f.write_all(format!("{record:#}\n").as_bytes()))
    }

    /// Takes an exclusive lock named `name` (waits for other builds).
    pub fn lock(&self, name: &str) -> io::Result<CacheLock> {
        let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        let file = File::options().create(true).truncate(false).write(true).open(self.bucket(Bucket::Locks).join(format!("{safe}.lock")))?;
        file.lock()?;
        Ok(CacheLock { file })
    }

    /// Creates `dest` atomically: `fill` writes into a temporary file in the
    /// cache, which is synced and renamed into place only if `fill` succeeds.
    pub fn write_atomic(&self, dest: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut tmp = self.temp_file()?;
        fill(tmp.as_file_mut())?;
        tmp.as_file_mut().flush()?;
        tmp.persist(dest).map_err(|e| e.error)?;
        Ok(())
    }

    /// A temporary file inside the cache (same filesystem as the entries,
    /// so it can be renamed into place).
    /// Named after this process and locked while open, so that cleaning
    /// leaves it alone.
    pub fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        let tmp = tempfile::Builder::new().prefix(&format!("{}-", std::process::id())).tempfile_in(self.bucket(Bucket::Tmp))?;
        tmp.as_file().lock()?;
        Ok(tmp)
    }
}

/// Opens (creating) `locks/gc.lock` under `root`: held shared by every
/// open cache, exclusively by `cache prune` (see [`gc`]).
pub(crate) fn lock_file(root: &Path) -> io::Result<File> {
    let dir = root.join(Bucket::Locks.dir());
    fs::create_dir_all(&dir)?;
    File::options().create(true).truncate(false).write(true).open(dir.join("gc.lock"))
}

/// The file name (without `.json`) of the root with this id.
fn root_id(id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(id.as_bytes())[..12])
}

/// True when a process with this id exists (its temporary files are in use).
pub(crate) fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_writes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let dest = c.blob_path("sha256", "abcdef");
        let r = c.write_atomic(&dest, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("interrupted"))
        });
        assert!(r.is_err());
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        c.write_atomic(&dest, |f| f.write_all(b"whole")).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
    }

    #[test]
    fn temporary_files_of_dead_builds_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let mine = c.temp_file().unwrap();
        fs::write(dir.path().join("tmp/999999999-abc"), b"half").unwrap();
        fs::write(dir.path().join("tmp/.tmpXYZ"), b"old style").unwrap();
        // A dead process id, but locked: a writer in another PID namespace.
        let foreign = dir.path().join("tmp/999999998-def");
        fs::write(&foreign, b"in use").unwrap();
        let held = File::open(&foreign).unwrap();
        held.lock().unwrap();
        Cache::open(dir.path()).unwrap();
        let mut left: Vec<_> = fs::read_dir(dir.path().join("tmp")).unwrap().map(|e| e.unwrap().path()).collect();
        left.sort();
        let mut want = vec![mine.path().to_path_buf(), foreign];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn locks_are_exclusive_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let held = c.lock("x").unwrap();
        let f = File::options().write(true).open(dir.path().join("locks/x.lock")).unwrap();
        assert!(f.try_lock().is_err());
        drop(held);
        assert!(f.try_lock().is_ok());
    }
}
