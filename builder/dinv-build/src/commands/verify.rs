//! `verify`: build a recipe twice into separate directories and compare
//! every output file byte for byte.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::outcome::{object, Outcome};
use crate::error::Stage;
use crate::pipeline::BuildOptions;
use crate::recipe::LoadedRecipe;
use crate::{Context, Error, Result};

use crate::emit::report::RUN_FIELDS as REPORT_RUN_FIELDS;

/// The comparison of one output file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    /// Path relative to the output directory.
    pub name: String,
    pub ok: bool,
    /// `sha256:…` of the file in each build (None when absent).
    pub first: Option<String>,
    pub second: Option<String>,
    /// First differing byte offset, when both exist and differ.
    pub first_difference: Option<u64>,
    /// Why a difference is expected or what it is.
    pub note: Option<String>,
}

/// Every file below `dir`, relative, sorted.
fn walk(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(Error::io(&d))? {
            let e = e.map_err(Error::io(&d))?;
            let t = e.file_type().map_err(Error::io(e.path()))?;
            if t.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(dir).expect("below dir").to_path_buf());
            }
        }
    }
    Ok(out)
}

fn sha256(p: &Path) -> Result<String> {
    let mut f = fs::File::open(p).map_err(Error::io(p))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(Error::io(p))?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Offset of the first byte where two files differ (or where the shorter ends).
fn first_difference(a: &Path, b: &Path) -> Result<Option<u64>> {
    let mut fa = std::io::BufReader::new(fs::File::open(a).map_err(Error::io(a))?);
    let mut fb = std::io::BufReader::new(fs::File::open(b).map_err(Error::io(b))?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut at = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(Error::io(a))?;
        let nb = read_full(&mut fb, &mut bb).map_err(Error::io(b))?;
        let n = na.min(nb);
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Ok(Some(at + i as u64));
        }
        if na != nb {
            return Ok(Some(at + n as u64));
        }
        if na == 0 {
            return Ok(None);
        }
        at += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// `report.json` without the fields that describe the run (timings, paths).
fn report_artifacts(p: &Path) -> Result<serde_json::Value> {
    let bytes = fs::read(p).map_err(Error::io(p))?;
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::stage(Stage::Verify, format!("{}: {e}", p.display())))?;
    let strip = |o: &mut serde_json::Map<String, serde_json::Value>| {
        for k in REPORT_RUN_FIELDS {
            o.remove(*k);
        }
    };
    if let Some(o) = v.as_object_mut() {
        strip(o);
        // A multi-platform report holds each platform's.
        for r in o.get_mut("platforms").and_then(|p| p.as_object_mut()).into_iter().flat_map(|p| p.values_mut()) {
            if let Some(r) = r.as_object_mut() {
                strip(r);
            }
        }
    }
    Ok(v)
}

/// Compares two output directories file by file. `report.json` is compared
/// without its run fields (timings, output path, bytes downloaded).
pub fn compare_dirs(a: &Path, b: &Path) -> Result<Vec<FileCheck>> {
    let (fa, fb) = (walk(a)?, walk(b)?);
    let mut checks = Vec::new();
    for rel in fa.union(&fb) {
        let name = rel.to_string_lossy().into_owned();
        let (pa, pb) = (a.join(rel), b.join(rel));
        let first = if fa.contains(rel) { Some(sha256(&pa)?) } else { None };
        let second = if fb.contains(rel) { Some(sha256(&pb)?) } else { None };
        let mut check = FileCheck { name: name.clone(), ok: first == second, first: first.clone(), second: second.clone(), first_difference: None, note: None };
        match (&first, &second) {
            (Some(_), None) => check.note = Some("only in the first build".into()),
            (None, Some(_)) => check.note = Some("only in the second build".into()),
            (Some(x), Some(y)) if x != y => {
                check.first_difference = first_difference(&pa, &pb)?;
                if rel.file_name().is_some_and(|n| n == "report.json") && report_artifacts(&pa)? == report_artifacts(&pb)? {
                    check.ok = true;
                    check.note = Some(format!("equal except run fields ({})", REPORT_RUN_FIELDS.join(", ")));
                }
            }
            _ => {}
        }
        checks.push(check);
    }
    Ok(checks)
}

/// The result of `verify`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub recipe: PathBuf,
    pub reproducible: bool,
    pub files: Vec<FileCheck>,
}

/// Builds `l` twice into two fresh directories (next to where its output
/// would go) and compares them. Both builds share the package cache, which
/// holds inputs only; every output is made anew each time.
pub fn verify(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<VerifyReport> {
    let out = crate::pipeline::out_dir(l, opts);
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(Error::io(parent))?;
    let work = tempfile::Builder::new().prefix(".verify-").tempdir_in(parent).map_err(Error::io(parent))?;
    let quiet = Context { quiet: true, json: false, ..ctx.clone() };
    let mut dirs = Vec::new();
    for run in ["first", "second"] {
        let dir = work.path().join(run);
        let o = BuildOptions { out: Some(dir.clone()), no_cache_root: true, ..opts.clone() };
        tracing::info!(run, "verify build");
        crate::pipeline::build(&quiet, l, &o)?;
        dirs.push(dir);
    }
    let files = compare_dirs(&dirs[0], &dirs[1])?;
    Ok(VerifyReport { recipe: l.path.clone(), reproducible: files.iter().all(|f| f.ok), files })
}

impl VerifyReport {
    /// The differing files, with where they first differ.
    fn differing(&self) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| !f.ok)
            .map(|f| match (f.first_difference, &f.note) {
                (_, Some(n)) => format!("{} ({n})", f.name),
                (Some(at), None) => format!("{} (first difference at byte {at})", f.name),
                (None, None) => f.name.clone(),
            })
            .collect()
    }
}

impl Outcome for VerifyReport {
    fn text(&self) -> String {
        let w = self.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for f in &self.files {
            let status = if f.ok { "OK" } else { "DIFFERS" };
            let mut detail = String::new();
            if let Some(off) = f.first_difference.filter(|_| !f.ok) {
                detail = format!("first difference at byte {off}");
            }
            if let Some(n) = &f.note {
                detail = if detail.is_empty() { n.clone() } else { format!("{detail}; {n}") };
            }
            out.push_str(format!("  {:w$}  {status:7} {detail}", f.name).trim_end());
            out.push('\n');
        }
        out.push_str(&format!("{}: {}\n", self.recipe.display(), if self.reproducible { "reproducible" } else { "NOT reproducible" }));
        out
    }

    fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        object(json!({"verify": self}))
    }

    fn failure(&self) -> Option<Error> {
        let differing = self.differing();
        (!differing.is_empty()).then(|| Error::NotReproducible(differing.join(", ")))
    }
}

pub fn run(ctx: &Context, l: &LoadedRecipe, opts: &BuildOptions) -> Result<Box<dyn Outcome>> {
    Ok(Box::new(verify(ctx, l, opts)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_differing_byte_and_missing_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for d in [a.path(), b.path()] {
            fs::create_dir_all(d.join("oci/blobs")).unwrap();
            fs::write(d.join("same"), b"abc").unwrap();
        }
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut other = big.clone();
        other[150_001] ^= 1;
        fs::write(a.path().join("oci/blobs/x"), &big).unwrap();
        fs::write(b.path().join("oci/blobs/x"), &other).unwrap();
        fs::write(a.path().join("short"), b"abcd").unwrap();
        fs::write(b.path().join("short"), b"abc").unwrap();
        fs::write(a.path().join("only-a"), b"").unwrap();
        let c = compare_dirs(a.path(), b.path()).unwrap();
        let get = |n: &str| c.iter().find(|f| f.name == n).unwrap_or_else(|| panic!("{n} in {c:?}"));
        assert!(get("same").ok);
        assert_eq!(get("oci/blobs/x").first_difference, Some(150_001));
        assert!(!get("oci/blobs/x").ok);
        assert_eq!(get("short").first_difference, Some(3));
        assert!(!get("only-a").ok && get("only-a").second.is_none());
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn report_json_differs_only_in_run_fields() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::write(a.path().join("report.json"), r#"{"seconds": 1.0, "out_dir": "a", "outputs": [1]}"#).unwrap();
        fs::write(b.path().join("report.json"), r#"{"seconds": 2.5, "out_dir": "b", "outputs": [1]}"#).unwrap();
        let c = compare_dirs(a.path(), b.path()).unwrap();
        assert!(c[0].ok && c[0].note.is_some(), "{c:?}");
        fs::write(b.path().join("report.json"), r#"{"seconds": 2.5, "out_dir": "b", "outputs": [2]}"#).unwrap();
        assert!(!compare_dirs(a.path(), b.path()).unwrap()[0].ok);
    }
}
