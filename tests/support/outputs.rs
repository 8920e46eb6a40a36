//! Comparing two build output directories file by file.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Every file below `dir` (relative path → bytes).
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// `report.json` without its run fields.
pub fn report_artifacts(bytes: &[u8], run_fields: &[&str]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    for k in run_fields {
        v.as_object_mut().unwrap().remove(*k);
    }
    v
}

/// Asserts two output directories hold the same files with the same bytes
/// (`report.json` compared without its run fields, `dinv_build::REPORT_RUN_FIELDS`).
/// Returns the file count.
pub fn assert_same_outputs(a: &Path, b: &Path, run_fields: &[&str]) -> usize {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>(), "different file lists in {} and {}", a.display(), b.display());
    for (name, x) in &fa {
        let y = &fb[name];
        if name == "report.json" {
            assert_eq!(report_artifacts(x, run_fields), report_artifacts(y, run_fields), "report.json differs beyond run fields");
            continue;
        }
        if x != y {
            let at = x.iter().zip(y.iter()).position(|(p, q)| p != q).unwrap_or(x.len().min(y.len()));
            panic!("{name} differs between {} and {} (sizes {} and {}, first difference at byte {at})", a.display(), b.display(), x.len(), y.len());
        }
    }
    fa.len()
}
