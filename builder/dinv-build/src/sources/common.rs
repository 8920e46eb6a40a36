//! What every package source shares: parallel download into the cache with
//! verification before anything enters it, and unpacking through the cache's
//! decompressed archives into the tree in install order.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dinv_fstree::tar::{insert_entry, EntryType, TarEntry, TarReader, UnpackOptions};
use dinv_fstree::{BackingFile, Content, Replace, Tree, TreePath};
use sha2::{Digest, Sha256};

use super::package::{ResolvedPackage, UnpackStats};
use crate::cache::Cache;
use crate::context::BuildEnv;
use crate::fetch::{FetchError, Fetched, Fetcher, Sink, Validators};
use crate::progress::Progress;
use crate::recipe::LoadedRecipe;
use crate::error::Check;
use crate::{Error, Result};

/// A trusted key (or keyring) file of a source: its bytes, file name and
/// SHA-256, read once. A missing or unreadable file is a recipe error at
/// the `sources.NAME.<list>[i]` entry that names it.
pub(crate) struct KeyFile {
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) sha256: String,
}

impl KeyFile {
    pub(crate) fn read(l: &LoadedRecipe, key: &str, path: &Path) -> Result<KeyFile> {
        let bytes = crate::recipe::vfs::read(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => l.error(key, format!("{} does not exist", path.display())),
            _ => l.error(key, format!("cannot read {}: {e}", path.display())),
        })?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Ok(KeyFile { path: path.to_path_buf(), name, bytes, sha256 })
    }
}

/// A source's index file, fetched (and kept in the cache for offline
/// builds), or, offline, the cached copy, and checked by `parse`. The
/// cache names it by a digest of its URL, so no host name appears on disk.
/// When the server gave an ETag or Last-Modified for the cached copy, it
/// is asked whether the copy is still current (a `304` costs no transfer).
/// Only a copy that `parse` accepts is cached. A cached copy that fails
/// `parse` (damaged in the cache) is dropped and fetched whole; a download
/// that fails it is fetched once more; a second failure is the error.
pub(crate) fn fetch_verified_index<T>(env: &BuildEnv, url: &str, parse: impl Fn(&[u8]) -> Result<T>) -> Result<T> {
    let name = hex::encode(Sha256::digest(url.as_bytes()));
    let cached = env.cache.index_path(&name);
    let validators_path = env.cache.index_validators_path(&name);
    let forget = || {
        let _ = fs::remove_file(&validators_path);
        let _ = fs::remove_file(&cached);
    };
    if env.fetcher.is_offline() && Fetcher::local_path(url).is_none() {
        let bytes = fs::read(&cached).map_err(|_| FetchError::Offline { url: url.to_string() })?;
        return parse(&bytes).map_err(|e| match e {
            Error::Integrity { subject, check } => Error::Integrity { subject, check: check.in_cached(&cached) },
            e => e,
        });
    }
    let known: Option<Validators> = fs::read(&validators_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).filter(|_| cached.is_file());
    // The whole file, asked for without validators (so never `304`).
    let whole = || -> Result<(Vec<u8>, Validators)> {
        match env.fetcher.fetch_if_changed(url, None, "index")? {
            Fetched::Body(b, v) => Ok((b, v)),
            Fetched::NotModified => Err(FetchError::Http { url: url.to_string(), message: "304 Not Modified to a request without validators".into() }.into()),
        }
    };
    let (bytes, validators) = match env.fetcher.fetch_if_changed(url, known.as_ref(), "index")? {
        Fetched::NotModified => match fs::read(&cached) {
            Ok(bytes) => match parse(&bytes) {
                Ok(t) => {
                    tracing::info!(%url, "index not modified (HTTP 304): using the cached copy");
                    return Ok(t);
                }
                Err(e @ Error::Integrity { .. }) => {
                    tracing::warn!("{e} (cached file {}): the cached copy is damaged; fetching it again", cached.display());
                    forget();
                    whole()?
                }
                Err(e) => return Err(e),
            },
            // The copy went away between the check and the read: fetch it whole.
            Err(_) => {
                forget();
                whole()?
            }
        },
        Fetched::Body(bytes, validators) => (bytes, validators),
    };
    let (t, bytes, validators) = match parse(&bytes) {
        Ok(t) => (t, bytes, validators),
        Err(e @ Error::Integrity { .. }) if Fetcher::local_path(url).is_none() => {
            tracing::warn!("{e}; downloading it once more");
            let (again, validators) = whole()?;
            (parse(&again)?, again, validators)
        }
        Err(e) => return Err(e),
    };
    // A failed cache write only costs the offline copy and the next check.
    let _ = fs::remove_file(&validators_path);
    if let Err(e) = env.cache.write_atomic(&cached, |f| f.write_all(&bytes)) {
        tracing::debug!("cannot cache {url}: {e}");
    } else if validators.any() {
        let json = serde_json::to_vec(&validators).expect("validators serialise");
        let _ = env.cache.write_atomic(&validators_path, |f| f.write_all(&json));
    }
    Ok(t)
}

/// [`fetch_verified_index`] for a file checked elsewhere (cached as fetched).
pub(crate) fn fetch_index(env: &BuildEnv, url: &str) -> Result<Vec<u8>> {
    fetch_verified_index(env, url, |b| Ok(b.to_vec()))
}

/// SHA-256 (hex) of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(Error::io(path))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).map_err(Error::io(path))?;
    Ok(hex::encode(h.finalize()))
}

/// Runs `work` over `items` on a few threads, stopping at the first error
/// (the earliest item's, so messages are deterministic).
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let failed: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                if failed.lock().unwrap().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    return;
                }
                match work(&items[i]) {
                    Ok(r) => results.lock().unwrap()[i] = Some(r),
                    Err(e) => {
                        let mut f = failed.lock().unwrap();
                        if f.as_ref().map(|(j, _)| i < *j).unwrap_or(true) {
                            *f = Some((i, e));
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = failed.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every item done")).collect())
}

/// Downloads every package whose cache entry (`dest`) is missing (see
/// [`fetch_one`]) and returns the bytes downloaded.
pub(crate) fn fetch_all(
    pkgs: &[ResolvedPackage],
    fetcher: &Fetcher,
    cache: &Cache,
    progress: &Progress,
    dest: impl Fn(&ResolvedPackage) -> Result<PathBuf> + Sync,
    verify: impl Fn(&ResolvedPackage, &Path) -> Result<()> + Sync,
) -> Result<u64> {
    let bar = progress.items("fetch", pkgs.len() as u64);
    let total = AtomicUsize::new(0);
    parallel(pkgs, 6, |p| {
        let n = fetch_one(p, fetcher, cache, &dest(p)?, &verify)?;
        total.fetch_add(n as usize, Ordering::Relaxed);
        bar.inc(1);
        bar.set_message(p.name.clone());
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(total.into_inner() as u64)
}

/// Downloads package `p` to `dest` unless it is there: streamed into a
/// temporary file in the cache (a large package is never held in memory),
/// checked with `verify` before it is renamed into place. A download that
/// fails its check is fetched once more (a transfer damaged on the way);
/// a second failure is the error. Concurrent builds wait on a per-blob
/// lock. Returns the bytes downloaded.
fn fetch_one(p: &ResolvedPackage, fetcher: &Fetcher, cache: &Cache, dest: &Path, verify: impl Fn(&ResolvedPackage, &Path) -> Result<()>) -> Result<u64> {
    if dest.exists() {
        return Ok(0);
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let _lock = cache.lock(&name).map_err(Error::io(dest))?;
    if dest.exists() {
        return Ok(0);
    }
    let mut tmp = cache.temp_file().map_err(Error::io(cache.root()))?;
    let mut n = fetcher.fetch_into(&p.url, tmp.as_file_mut(), &p.name)?;
    if let Err(e) = verify(p, tmp.path()) {
        if !matches!(e, Error::Integrity { .. }) || Fetcher::local_path(&p.url).is_some() {
            return Err(e);
        }
        tracing::warn!("{e}; downloading it once more");
        tmp.as_file_mut().restart().map_err(Error::io(tmp.path()))?;
        n += fetcher.fetch_into(&p.url, tmp.as_file_mut(), &p.name)?;
        verify(p, tmp.path())?;
    }
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
    }
    tmp.persist(dest).map_err(|e| Error::io(dest)(e.error))?;
    Ok(n)
}

/// `prepare()` of package `p`, whose cache entry is `dest`; when that
/// entry turns out damaged (an integrity failure of the cached file), it
/// is dropped, fetched again (checked by `verify`) and prepared once more.
pub(crate) fn prepare_or_refetch(
    p: &ResolvedPackage,
    env: &BuildEnv,
    dest: &Path,
    verify: impl Fn(&ResolvedPackage, &Path) -> Result<()>,
    prepare: impl Fn() -> Result<Prepared>,
) -> Result<Prepared> {
    match prepare() {
        Err(e @ Error::Integrity { check: Check::Cached { .. }, .. }) => {
            tracing::warn!("{e}: the cached copy is damaged; fetching it again");
            fs::remove_file(dest).map_err(Error::io(dest))?;
            fetch_one(p, &env.fetcher, &env.cache, dest, verify)?;
            prepare()
        }
        r => r,
    }
}

/// A package's data archive, decompressed in the cache, with its members.
pub(crate) struct Prepared {
    pub(crate) entries: Vec<TarEntry>,
    pub(crate) backing: Arc<BackingFile>,
    pub(crate) data_bytes: u64,
    /// Names of the package scripts that were not run.
    pub(crate) scripts: Vec<String>,
}

/// Writes everything read through it into `out`.
struct Tee<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn read_entries<R: Read>(r: R, id: &str) -> Result<(Vec<TarEntry>, R)> {
    let mut tar = TarReader::new(r);
    let mut entries = Vec::new();
    while let Some(e) = tar.next_entry().map_err(|e| Error::integrity(id, Check::DataArchive(e)))? {
        entries.push(e);
    }
    Ok((entries, tar.into_inner()))
}

/// Reads through to `inner`, hashing what it reads.
struct HashRead<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes through to `inner`, hashing what it writes.
struct HashWrite<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The length of a BLAKE3 digest, which ends every cached data archive.
const TRAILER: u64 = 32;

/// The members of the cached data archive `f` (`path`), after checking the
/// BLAKE3 of the archive against the digest that ends the file; `None`,
/// with a warning, when the file is damaged.
fn read_cached_archive(f: &fs::File, path: &Path, id: &str) -> Option<(Vec<TarEntry>, u64)> {
    let len = f.metadata().ok()?.len();
    let damaged = |why: String| {
        tracing::warn!("{}: cached data archive of {id} is damaged ({why}); unpacking the package again", path.display());
        None
    };
    let Some(data_len) = len.checked_sub(TRAILER) else { return damaged(format!("{len} bytes")) };
    let mut r = HashRead { inner: io::BufReader::with_capacity(1 << 20, f).take(data_len), hasher: blake3::Hasher::new() };
    let entries = match read_entries(&mut r, id) {
        Ok((entries, _)) => entries,
        Err(e) => return damaged(e.to_string()),
    };
    if let Err(e) = io::copy(&mut r, &mut io::sink()) {
        return damaged(e.to_string());
    }
    let mut trailer = [0u8; TRAILER as usize];
    if r.inner.into_inner().read_exact(&mut trailer).is_err() || r.hasher.finalize().as_bytes() != &trailer {
        return damaged("its digest does not match".to_string());
    }
    Some((entries, data_len))
}

/// The decompressed data archive `key` in the cache: read from there when
/// present and whole, else made by streaming `data()` into it while its
/// headers are parsed (one pass), followed by its BLAKE3, so damage is
/// found when it is read again.
pub(crate) fn cached_data<'a>(
    cache: &Cache,
    key: &str,
    id: &str,
    scripts: Vec<String>,
    data: impl FnOnce() -> Result<Box<dyn Read + 'a>>,
) -> Result<Prepared> {
    let unpacked = cache.unpacked_path(key);
    if let Ok(f) = fs::File::open(&unpacked) {
        if let Some((entries, data_bytes)) = read_cached_archive(&f, &unpacked, id) {
            return Ok(Prepared { entries, backing: BackingFile::from_file(&unpacked, f), data_bytes, scripts });
        }
        let _ = fs::remove_file(&unpacked);
    }
    let tmp = cache.temp_file().map_err(Error::io(cache.root()))?;
    let reader_file = tmp.reopen().map_err(Error::io(tmp.path()))?;
    let writer = io::BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone().map_err(Error::io(tmp.path()))?);
    let tee = Tee { inner: data()?, out: HashWrite { inner: writer, hasher: blake3::Hasher::new() } };
    let (entries, mut tee) = read_entries(tee, id)?;
    // Keep whatever follows the end marker so the cached file is the whole stream.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| Error::integrity(id, Check::DataArchive(e.into())))?;
    let mut out = tee.out;
    let digest = out.hasher.finalize();
    out.inner.write_all(digest.as_bytes()).and_then(|_| out.inner.flush()).map_err(Error::io(tmp.path()))?;
    drop(out);
    let data_bytes = reader_file.metadata().map(|m| m.len() - TRAILER).unwrap_or(0);
    tmp.persist(&unpacked).map_err(|e| Error::io(&unpacked)(e.error))?;
    Ok(Prepared { entries, backing: BackingFile::from_file(&unpacked, reader_file), data_bytes, scripts })
}

/// Prepares every package (verify + decompress, in parallel), then inserts
/// them into the tree in install order, so later packages win
/// deterministically.
pub(crate) fn unpack_all(
    pkgs: &[ResolvedPackage],
    tree: &mut Tree,
    progress: &Progress,
    rewrite: Option<&dyn Fn(&TreePath) -> Option<TreePath>>,
    prepare: impl Fn(&ResolvedPackage) -> Result<Prepared> + Sync,
) -> Result<UnpackStats> {
    let bar = progress.items("unpack", pkgs.len() as u64);
    let prepared = parallel(pkgs, 2, |p| {
        let r = prepare(p);
        bar.inc(1);
        r
    })?;
    bar.finish_and_clear();
    let mut stats = UnpackStats::default();
    for (p, prep) in pkgs.iter().zip(prepared) {
        let opts = UnpackOptions { origin: Arc::from(p.name.as_str()), replace: Replace::Allow, rewrite };
        for e in &prep.entries {
            let content =
                (e.entry_type == EntryType::Regular).then(|| Content::Range { file: prep.backing.clone(), offset: e.data_offset, len: e.size });
            insert_entry(tree, e, content, &opts).map_err(|err| Error::integrity(p.id(), err))?;
            stats.entries += 1;
        }
        stats.packages += 1;
        stats.bytes += prep.data_bytes;
        if !prep.scripts.is_empty() {
            tracing::debug!(package = %p.id(), scripts = ?prep.scripts, "package scripts not run (their effects are produced declaratively)");
        }
    }
    Ok(stats)
}
