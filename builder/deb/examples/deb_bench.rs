//! Timings on this machine's real Debian metadata:
//! `cargo run --release -p dinv-deb --example deb_bench [-- path/to/some.deb]`.
//! Without a path, `apt-get download docker.io` fetches one into a temp dir.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use dinv_deb::{open_deb, parse_packages_bytes, to_candidate, verify_blob, verify_clearsigned, Keyring, Release};

const LISTS: &str = "/var/lib/apt/lists";

fn list(suffix: &str) -> PathBuf {
    std::fs::read_dir(LISTS)
        .expect("apt lists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .unwrap_or_else(|| panic!("no {LISTS}/*{suffix}: run `apt-get update` first"))
}

fn mb_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn download(dir: &Path) -> PathBuf {
    let st = Command::new("apt-get").args(["download", "docker.io"]).current_dir(dir).status().expect("run apt-get");
    assert!(st.success(), "apt-get download docker.io failed");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb")
}

fn main() {
    let keyring =
        Keyring::from_bytes(&std::fs::read("/usr/share/keyrings/debian-archive-keyring.gpg").unwrap()).unwrap();
    let inrelease = std::fs::read(list("_dists_bookworm_InRelease")).unwrap();
    let t = Instant::now();
    let verified = verify_clearsigned(&inrelease, &keyring, "bookworm InRelease").unwrap();
    println!("InRelease verify ({} bytes, {} signatures): {:?}", inrelease.len(), verified.signers.len(), t.elapsed());
    let t = Instant::now();
    let release = Release::parse(&verified.text).unwrap();
    println!("Release parse ({} SHA256 entries): {:?}", release.sha256.len(), t.elapsed());

    let lz4 = std::fs::read(list("_dists_bookworm_main_binary-amd64_Packages.lz4")).unwrap();
    let mut packages = Vec::new();
    lz4_flex::frame::FrameDecoder::new(&lz4[..]).read_to_end(&mut packages).unwrap();
    let t = Instant::now();
    release.file("main/binary-amd64/Packages").expect("listed").verify(&packages).unwrap();
    println!("Packages SHA256 check ({} bytes): {:?}", packages.len(), t.elapsed());
    let t = Instant::now();
    let records = parse_packages_bytes(&packages, "main/binary-amd64/Packages").unwrap();
    let parse = t.elapsed();
    println!(
        "Packages parse: {} paragraphs in {parse:?} ({:.0} MB/s)",
        records.len(),
        mb_s(packages.len(), parse.as_secs_f64())
    );
    let t = Instant::now();
    let cands: Vec<_> = records.iter().map(|r| to_candidate(r, 0, "amd64")).collect::<Result<_, _>>().unwrap();
    println!("to_candidate: {} candidates in {:?}", cands.len(), t.elapsed());

    let tmp = tempfile::tempdir().unwrap();
    let deb_path = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| download(tmp.path()));
    let deb = std::fs::read(&deb_path).unwrap();
    let name = deb_path.file_name().unwrap().to_string_lossy().to_string();
    if let Some(r) = records.iter().find(|r| r.filename.ends_with(&name)) {
        verify_blob(&deb, &r.sha256, r.size, &r.package).unwrap();
        println!("{name}: SHA256 matches bookworm main's Packages");
    } else {
        println!("{name}: not in bookworm main's Packages (from another suite), hash not checked");
    }
    let d = open_deb(&deb[..], &name).unwrap();
    let member = d.data_member().to_string();
    let mut raw = Vec::new();
    d.into_raw_data().read_to_end(&mut raw).unwrap();

    let t = Instant::now();
    let d = open_deb(&deb[..], &name).unwrap();
    let out = io::copy(&mut d.into_data().unwrap(), &mut io::sink()).unwrap() as usize;
    let ours = t.elapsed().as_secs_f64();
    println!("{member}: {} → {} bytes; dinv-deb: {ours:.3} s ({:.0} MB/s out)", raw.len(), out, mb_s(out, ours));

    if member.ends_with(".xz") {
        let t = Instant::now();
        let mut child =
            Command::new("xz").args(["-dc"]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("xz");
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        assert!(child.wait().unwrap().success());
        let xz = t.elapsed().as_secs_f64();
        println!("{member}: xz -dc: {xz:.3} s ({:.0} MB/s out)", mb_s(out, xz));
    }
}
