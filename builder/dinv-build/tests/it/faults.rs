//! Faults, with real processes on loopback: a build killed (`kill -9`) in
//! each stage and in the middle of a download, `out/` on a full
//! filesystem, a mirror that closes connections, cuts bodies short, serves
//! damaged bytes or stalls, and damaged cache entries. After each: the
//! previous `out/<name>` is byte for byte what it was, nothing but a
//! staging directory was written beside it, every cache entry is whole,
//! and the next build succeeds with the same outputs as an undisturbed one.
//!
//! The default recipe builds from a generated Alpine v3.22-shaped mirror
//! (`support::alpine_repo`) served by `support::http`, whose faults the
//! tests arm. Builds are stopped in a known stage with the test hook
//! `DINV_TEST_PAUSE_AT=<stage>`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use dinv_test_support as support;
use support::alpine_repo::{repo_root, AlpineMirror, KERNEL_VERSION};
use support::cli::{text, Cli};
use support::http::{Fault, Server};
use support::outputs::{assert_same_outputs, files};

/// The package the download faults hit: the largest of the guest.
const VICTIM: &str = "linux-virt";

/// A generated mirror on a local HTTP server, the default recipe pointed
/// at it, and a reference build (cold cache) to compare every rebuild with.
struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    recipe: PathBuf,
    /// The outputs of an undisturbed build.
    reference: PathBuf,
    /// SHA-256 of every file the mirror serves.
    served: BTreeSet<String>,
}

fn sha256(b: &[u8]) -> String {
    dinv_test_support::sha256_hex(b)
}

/// Every file below `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mirror = AlpineMirror::write(dir.path());
        let server = Server::start(mirror.root.clone());
        let served = walk(&mirror.root).iter().map(|p| sha256(&fs::read(p).unwrap())).collect();
        let default = repo_root().join("recipes/default.toml").canonicalize().unwrap();
        let recipe_text = mirror.child_recipe(&default, "").replace(&format!("file://{}", mirror.root.display()), &server.url());
        let recipe = dir.path().join("recipe.toml");
        fs::write(&recipe, recipe_text).unwrap();
        let f = Fixture { reference: dir.path().join("reference"), dir, server, recipe, served };
        let o = f.cli().cache(f.path("reference-cache")).run(&["build", "--quiet", "--out", "reference", f.recipe.to_str().unwrap()]);
        assert!(o.status.success(), "reference build: {}", text(&o));
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    fn out(&self) -> PathBuf {
        self.path("out/dinv")
    }

    /// The CLI with a short timeout, so a stall costs seconds.
    fn cli(&self) -> Cli {
        Cli::new(env!("CARGO_BIN_EXE_dinv-build"), self.dir.path()).env("DINV_FETCH_TIMEOUT", "1").env("DINV_FETCH_ATTEMPTS", "3")
    }

    fn build_args(&self) -> Vec<String> {
        vec!["build".into(), "--out".into(), "out/dinv".into(), self.recipe.display().to_string()]
    }

    fn build(&self) -> Output {
        let args = self.build_args();
        self.cli().run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Builds and checks the outputs against the reference; returns stderr.
    fn build_ok(&self) -> String {
        let o = self.build();
        assert!(o.status.success(), "build: {}", text(&o));
        assert_same_outputs(&self.reference, &self.out(), dinv_build::REPORT_RUN_FIELDS);
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// A build that stops at `stage` (the test hook), once it says so.
    fn start_paused(&self, stage: &str) -> Child {
        let args = self.build_args();
        let mut child = self
            .cli()
            .env("DINV_TEST_PAUSE_AT", stage)
            .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut seen = String::new();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let want = format!("paused at stage {stage} ");
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains(&want) => break,
                Some(Ok(line)) => seen += &format!("{line}\n"),
                _ => panic!("the build ended before stage {stage}: {seen}"),
            }
        }
        child
    }

    /// The mirror's file for package `name` (`main/x86_64/NAME-VERSION.apk`).
    fn apk_url_suffix(&self, name: &str, version: &str) -> String {
        format!("/x86_64/{name}-{version}.apk")
    }

    /// The cached blob with the bytes of the served file ending in `suffix`.
    fn cached_blob_of(&self, suffix: &str) -> Option<PathBuf> {
        let served = walk(&self.path("mirror")).into_iter().find(|p| p.to_string_lossy().ends_with(suffix)).unwrap();
        let want = fs::read(served).unwrap();
        walk(&self.cache().join("blobs")).into_iter().find(|p| fs::read(p).unwrap() == want)
    }

    /// The previous output is intact, nothing but staging directories lie
    /// beside it, and every entry of the cache is whole.
    fn assert_undisturbed(&self, before: &BTreeMap<String, Vec<u8>>, what: &str) {
        assert!(files(&self.out()) == *before, "{what}: out/dinv changed");
        for e in fs::read_dir(self.path("out")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(name == "dinv" || name.starts_with(".dinv.partial-"), "{what}: out/{name} was left beside out/dinv");
        }
        self.assert_cache_whole(what);
    }

    /// Every cache entry is a whole, checkable file: package blobs and
    /// indexes are files the mirror serves, unpacked archives, pieces and
    /// layer records match the digests they carry.
    fn assert_cache_whole(&self, what: &str) {
        let c = self.cache();
        for p in walk(&c.join("blobs")) {
            assert!(self.served.contains(&sha256(&fs::read(&p).unwrap())), "{what}: {} is not a file the mirror serves", p.display());
        }
        for p in walk(&c.join("indexes")).into_iter().filter(|p| p.extension().is_none()) {
            assert!(self.served.contains(&sha256(&fs::read(&p).unwrap())), "{what}: {} is not an index the mirror serves", p.display());
        }
        for p in walk(&c.join("unpacked")) {
            let b = fs::read(&p).unwrap();
            let (data, digest) = b.split_at(b.len() - 32);
            assert_eq!(blake3::hash(data).as_bytes(), digest, "{what}: {} does not match its digest", p.display());
        }
        for p in walk(&c.join("pieces")) {
            let b = fs::read(&p).unwrap();
            assert_eq!(blake3::hash(&b[32..]).as_bytes(), &b[..32], "{what}: {} does not match its digest", p.display());
        }
        for p in walk(&c.join("layers")) {
            let b = fs::read(&p).unwrap();
            let nl = b.iter().position(|&c| c == b'\n').unwrap();
            assert_eq!(blake3::hash(&b[nl + 1..]).to_hex().as_bytes(), &b[..nl], "{what}: {} does not match its digest", p.display());
        }
    }

    /// After a successful build: no staging directory and no temporary file is left.
    fn assert_clean(&self, what: &str) {
        let left: Vec<_> = fs::read_dir(self.path("out")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left, ["dinv"], "{what}: left in out/");
        assert_eq!(walk(&self.cache().join("tmp")), Vec::<PathBuf>::new(), "{what}: left in the cache's tmp/");
        self.assert_cache_whole(what);
    }
}

fn kill9(child: &mut Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
}

/// `kill -9` at the start of every stage, and in the middle of a download.
#[test]
fn a_build_killed_in_any_stage_leaves_the_previous_output_and_a_whole_cache() {
    let f = Fixture::new();
    f.build_ok();
    for stage in ["resolve", "fetch", "unpack", "configure", "unpack-runtime", "kernel", "rootfs", "image", "sbom", "publish"] {
        let before = files(&f.out());
        let mut child = f.start_paused(stage);
        kill9(&mut child);
        f.assert_undisturbed(&before, &format!("killed at {stage}"));
        f.build_ok();
        f.assert_clean(&format!("the build after a kill at {stage}"));
    }

    // In the middle of a download: the mirror stalls after half the file.
    let suffix = f.apk_url_suffix(VICTIM, KERNEL_VERSION);
    let before = files(&f.out());
    fs::remove_file(f.cached_blob_of(&suffix).expect("the package is cached")).unwrap();
    f.server.arm(&suffix, Fault::StallAfter(8_000, Duration::from_secs(30)));
    f.server.clear_log();
    let args = f.build_args();
    let log = fs::File::create(f.path("mid-download.log")).unwrap();
    let mut child = f.cli().env("DINV_FETCH_TIMEOUT", "60").command(&args.iter().map(String::as_str).collect::<Vec<_>>()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    // The stall is logged when it starts; the download's file is in the cache's tmp/.
    while !f.server.log().iter().any(|h| h.path.ends_with(&suffix)) || walk(&f.cache().join("tmp")).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the build ended during the stall: {}", fs::read_to_string(f.path("mid-download.log")).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(&mut child);
    f.assert_undisturbed(&before, "killed mid-download");
    assert!(f.cached_blob_of(&suffix).is_none(), "a partial download entered the cache");
    f.build_ok();
    f.assert_clean("the build after a kill mid-download");
}

/// A connection closed mid-body, and a chunked body cut short, are
/// retried; a close-delimited body cut short looks complete to HTTP, fails
/// its checksum, and is downloaded once more. Three closed connections in
/// a row fail the build, naming the URL and the attempts.
#[test]
fn cut_downloads_are_retried_and_a_mirror_that_always_cuts_fails_cleanly() {
    let f = Fixture::new();
    f.build_ok();
    let suffix = f.apk_url_suffix(VICTIM, KERNEL_VERSION);
    for (fault, what) in [
        (Fault::CloseAfter(10_000), "connection broken after 10000 of"),
        (Fault::ChunkedCut(10_000), "connection broken after 10000 bytes"),
        (Fault::ShortClose(10_000), "downloading it once more"),
    ] {
        fs::remove_file(f.cached_blob_of(&suffix).unwrap()).unwrap();
        f.server.clear_log();
        f.server.arm(&suffix, fault.clone());
        let log = f.build_ok();
        assert!(log.contains(what), "{fault:?}: {log}");
        let hits: Vec<u64> = f.server.log().iter().filter(|h| h.path.ends_with(&suffix)).map(|h| h.sent).collect();
        assert_eq!(hits.len(), 2, "{fault:?}: {hits:?}");
        assert_eq!(hits[0], 10_000, "{fault:?}");
        f.assert_clean(&format!("{fault:?}"));
    }

    // The index too: a cut index is fetched again.
    fs::remove_dir_all(f.cache().join("indexes")).unwrap();
    f.server.clear_log();
    f.server.arm("/main/x86_64/APKINDEX.tar.gz", Fault::CloseAfter(100));
    let log = f.build_ok();
    assert!(log.contains("retrying"), "{log}");
    assert_eq!(f.server.statuses("/main/x86_64/APKINDEX.tar.gz"), [200, 200]);

    // Every attempt cut: exit 4, the URL and the attempts named, nothing published.
    let before = files(&f.out());
    fs::remove_file(f.cached_blob_of(&suffix).unwrap()).unwrap();
    for _ in 0..3 {
        f.server.arm(&suffix, Fault::CloseAfter(10_000));
    }
    let o = f.build();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains(&format!("{}/v3.22/main{suffix}: failed after 3 attempts (connection broken after 10000 of", f.server.url())), "{t}");
    f.assert_undisturbed(&before, "after a failed download");
    f.build_ok();
    f.assert_clean("the build after a failed download");
}

/// Damaged bytes with status 200 and the right length: the package fails
/// its check and is downloaded once more; damaged twice, the build fails
/// naming the package and the check, and nothing damaged is cached.
#[test]
fn a_damaged_download_is_fetched_once_more_then_refused() {
    let f = Fixture::new();
    f.build_ok();
    let suffix = f.apk_url_suffix(VICTIM, KERNEL_VERSION);
    fs::remove_file(f.cached_blob_of(&suffix).unwrap()).unwrap();
    f.server.arm(&suffix, Fault::Corrupt { good: 10_000 });
    let log = f.build_ok();
    assert!(log.contains(&format!("{VICTIM}-{KERNEL_VERSION}")) && log.contains("downloading it once more"), "{log}");
    f.assert_clean("after one damaged download");

    let before = files(&f.out());
    fs::remove_file(f.cached_blob_of(&suffix).unwrap()).unwrap();
    f.server.arm(&suffix, Fault::Corrupt { good: 10_000 });
    f.server.arm(&suffix, Fault::Corrupt { good: 10_000 });
    let o = f.build();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains(&format!("error: {VICTIM}-{KERNEL_VERSION}")), "{t}");
    f.assert_undisturbed(&before, "after two damaged downloads");
    assert!(f.cached_blob_of(&suffix).is_none());
    f.build_ok();
    f.assert_clean("the build after two damaged downloads");
}

/// A mirror that sends part of a file and then nothing: each attempt times
/// out after DINV_FETCH_TIMEOUT, retries back off (0.5 s, then 1 s), and
/// after DINV_FETCH_ATTEMPTS the build fails naming the URL. One stall
/// alone is survived.
#[test]
fn a_stalled_mirror_times_out_with_retries_and_backoff() {
    let f = Fixture::new();
    f.build_ok();
    let suffix = f.apk_url_suffix(VICTIM, KERNEL_VERSION);

    fs::remove_file(f.cached_blob_of(&suffix).unwrap()).unwrap();
    f.server.arm(&suffix, Fault::StallAfter(10_000, Duration::from_secs(20)));
    let log = f.build_ok();
    assert!(log.contains("no data for longer than the timeout after 10000 of") && log.contains("retrying in 0.5 s (attempt 2 of 3)"), "{log}");

    let before = files(&f.out());
    fs::remove_file(f.cached_blob_of(&suffix).unwrap()).unwrap();
    f.server.clear_log();
    for _ in 0..3 {
        f.server.arm(&suffix, Fault::StallAfter(10_000, Duration::from_secs(20)));
    }
    let o = f.build();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    let url = format!("{}/v3.22/main{suffix}", f.server.url());
    assert!(t.contains(&format!("{url}: timed out after 3 attempts")), "{t}");
    assert!(t.contains("retrying in 0.5 s (attempt 2 of 3)") && t.contains("retrying in 1.0 s (attempt 3 of 3)"), "{t}");
    assert_eq!(f.server.log().iter().filter(|h| h.path.ends_with(&suffix)).count(), 3);
    f.assert_undisturbed(&before, "after a stalled mirror");
    f.build_ok();
    f.assert_clean("the build after a stalled mirror");
}

/// Flips one byte in the middle of a file.
fn flip(p: &Path) {
    let mut b = fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x55;
    fs::write(p, b).unwrap();
}

/// A damaged entry of each kind in the cache is found when used, made
/// again (downloaded, unpacked, compressed or written), with a warning, and
/// the outputs are the same as an undisturbed build's.
#[test]
fn damaged_cache_entries_are_found_and_made_again() {
    let f = Fixture::new();
    f.build_ok();
    let c = f.cache();
    let suffix = f.apk_url_suffix(VICTIM, KERNEL_VERSION);
    let largest = |dir: &str| walk(&c.join(dir)).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let index = walk(&c.join("indexes")).into_iter().find(|p| p.extension().is_none()).unwrap();
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        ("package blob", f.cached_blob_of(&suffix).unwrap(), "the cached copy is damaged; fetching it again"),
        ("unpacked archive", largest("unpacked"), "is damaged (its digest does not match); unpacking the package again"),
        ("layer piece", largest("pieces"), "is damaged; compressing it again"),
        ("layer record", largest("layers"), "is damaged; writing the layer from its tree"),
        ("index", index, "the cached copy is damaged; fetching it again"),
    ];
    for (what, path, warning) in cases {
        flip(&path);
        f.server.clear_log();
        let log = f.build_ok();
        assert!(log.contains(warning) && log.contains(&path.display().to_string()), "{what}: {log}");
        f.assert_clean(what);
    }
    // The index's validators got a 304; the damaged copy was then fetched whole.
    assert!(f.server.statuses("APKINDEX.tar.gz").contains(&304));
}

/// `out/` on a full filesystem (a small tmpfs, mounted in a user and
/// mount namespace): the build fails with exit 1 and ENOSPC naming a path
/// in the staging directory, out/dinv stays as it was, and once there is
/// room the next build succeeds.
#[test]
fn a_full_out_filesystem_fails_with_enospc_and_keeps_the_previous_output() {
    let probe = Command::new("unshare").args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /tmp"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("DINV_REQUIRE_NAMESPACES").is_none(), "no user+mount namespaces: {probe:?}");
        eprintln!("skipped: unshare -rm cannot mount a tmpfs here ({probe:?}); set DINV_REQUIRE_NAMESPACES=1 to make this a failure");
        return;
    }
    let f = Fixture::new();
    // Room for one output and a fraction of a second one (rootfs.ext4 is
    // sparse: count the blocks it uses).
    let size: u64 = walk(&f.reference).iter().map(|p| std::os::unix::fs::MetadataExt::blocks(&fs::metadata(p).unwrap()) * 512).sum();
    let limit = size + size / 4;
    let args = f.build_args().join(" ");
    let bin = env!("CARGO_BIN_EXE_dinv-build");
    let d = f.dir.path().display();
    // Inside the namespace: mount, build, copy what is there, build on the
    // full filesystem, copy what is there, make room, build again.
    let script = format!(
        r#"set -u
cd {d}
mount -t tmpfs -o size={limit} tmpfs out || exit 90
{bin} {args} >first.log 2>&1 || exit 91
cp -a out/dinv before
{bin} {args} >full.log 2>&1; echo $? >full.code
ls -A out >full.ls
cp -a out/dinv after
mount -o remount,size={big} out || exit 92
{bin} {args} >last.log 2>&1; echo $? >last.code
ls -A out >last.ls
cp -a out/dinv last
"#,
        big = limit * 3
    );
    fs::create_dir_all(f.path("out")).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", &script]);
    for k in support::cli::HIDDEN_INPUTS {
        cmd.env_remove(k);
    }
    cmd.env("DINV_CACHE_DIR", f.cache());
    let run = cmd.output().unwrap();
    let read = |n: &str| fs::read_to_string(f.path(n)).unwrap_or_default();
    assert!(run.status.success(), "{}\nfirst: {}", text(&run), read("first.log"));
    let full = read("full.log");
    assert_eq!(read("full.code").trim(), "1", "{full}");
    assert!(full.contains("No space left on device (os error 28)") && full.contains("/out/.dinv.partial-"), "{full}");
    assert_eq!(read("full.ls").trim(), "dinv", "{full}");
    assert!(files(&f.path("after")) == files(&f.path("before")), "out/dinv changed on a full filesystem");
    assert_eq!(read("last.code").trim(), "0", "{}", read("last.log"));
    assert_eq!(read("last.ls").trim(), "dinv");
    assert_same_outputs(&f.reference, &f.path("last"), dinv_build::REPORT_RUN_FIELDS);
}
