//! `APKINDEX.tar.gz`: a signature member, then a tar with `DESCRIPTION` and
//! `APKINDEX`, whose text is one block of `X:value` lines per package.

use std::fmt::Write as _;

use dinv_fstree::tar::TarReader;

use crate::sign::{self, SigAlgo};
use crate::{segments, ApkDep, Checksum, IndexError, Keyring};

/// One package of an index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// `C:` identity (SHA-1 of the control member).
    pub checksum: Option<Checksum>,
    /// `P:`
    pub name: String,
    /// `V:`
    pub version: String,
    /// `A:`
    pub arch: Option<String>,
    /// `S:` size of the `.apk` file.
    pub size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:`
    pub description: String,
    /// `U:`
    pub url: String,
    /// `L:`
    pub license: String,
    /// `o:`
    pub origin: Option<String>,
    /// `m:`
    pub maintainer: Option<String>,
    /// `t:` build time (seconds since the epoch).
    pub build_time: Option<u64>,
    /// `c:` source commit.
    pub commit: Option<String>,
    /// `k:` provider priority.
    pub provider_priority: Option<u32>,
    /// `D:` dependencies, including `!conflicts`.
    pub depends: Vec<ApkDep>,
    /// `p:` provided names (`so:`, `cmd:`, `pc:`, virtuals), `name[=ver]`.
    pub provides: Vec<ApkDep>,
    /// `i:` install_if conditions.
    pub install_if: Vec<ApkDep>,
    /// Fields this parser does not interpret, in file order (kept so the
    /// entry can be written back unchanged).
    pub extra: Vec<(char, String)>,
    /// Why apk-tools v2 would refuse to install this package (e.g. an
    /// upper-case field it does not know: a format feature it lacks).
    /// Empty when installable.
    pub uninstallable: Vec<String>,
}

impl IndexEntry {
    /// `name-version`.
    pub fn label(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// File name of the package in its repository: `name-version.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Whether apk-tools v2 would consider it installable.
    pub fn is_installable(&self) -> bool {
        self.uninstallable.is_empty()
    }

    /// Applies one `X:value` line; a bad value marks the entry uninstallable.
    fn add_field(&mut self, field: u8, value: &str) {
        let mut problem = None;
        let number = |v: &str| v.parse::<u64>().ok();
        let deps = |v: &str| ApkDep::parse_list(v);
        match field {
            b'P' => self.name = value.to_string(),
            b'V' => self.version = value.to_string(),
            b'T' => self.description = value.to_string(),
            b'U' => self.url = value.to_string(),
            b'L' => self.license = value.to_string(),
            b'A' => self.arch = Some(value.to_string()),
            b'o' => self.origin = Some(value.to_string()),
            b'm' => self.maintainer = Some(value.to_string()),
            b'c' => self.commit = Some(value.to_string()),
            b'C' => match Checksum::parse(value) {
                Some(c) => self.checksum = Some(c),
                None => problem = Some(format!("C:{value}: not a checksum")),
            },
            b'S' | b'I' | b't' => match number(value) {
                Some(n) if field == b'S' => self.size = n,
                Some(n) if field == b'I' => self.installed_size = n,
                Some(n) => self.build_time = Some(n),
                None => problem = Some(format!("{}:{value}: not a number", field as char)),
            },
            b'k' => match value.parse() {
                Ok(n) => self.provider_priority = Some(n),
                Err(_) => problem = Some(format!("k:{value}: not a number")),
            },
            b'D' | b'p' | b'i' => match deps(value) {
                Ok(d) => match field {
                    b'D' => self.depends.extend(d),
                    b'p' => self.provides.extend(d),
                    _ => self.install_if.extend(d),
                },
                Err(e) => problem = Some(format!("{}: {e}", field as char)),
            },
            _ => {
                // apk-tools v2 skips lower-case fields it does not know and
                // the installed-database fields (F M R Z r q a s f); any
                // other upper-case field marks the package uninstallable.
                let known_db_field = b"FMRZrqasf".contains(&field);
                if field.is_ascii_uppercase() && !known_db_field {
                    problem = Some(format!("unknown field {}: (needs a newer apk-tools)", field as char));
                }
                self.extra.push((field as char, value.to_string()));
            }
        }
        self.uninstallable.extend(problem);
    }

    /// Appends the entry in apk's index format (field order of `apk index`),
    /// followed by the blank line that ends it.
    pub fn write_to(&self, out: &mut String) {
        let mut f = |c: char, v: &str| {
            let _ = writeln!(out, "{c}:{v}");
        };
        if let Some(c) = &self.checksum {
            f('C', &c.to_string());
        }
        f('P', &self.name);
        f('V', &self.version);
        if let Some(a) = &self.arch {
            f('A', a);
        }
        f('S', &self.size.to_string());
        f('I', &self.installed_size.to_string());
        f('T', &self.description);
        f('U', &self.url);
        f('L', &self.license);
        if let Some(v) = &self.origin {
            f('o', v);
        }
        if let Some(v) = &self.maintainer {
            f('m', v);
        }
        if let Some(v) = self.build_time {
            f('t', &v.to_string());
        }
        if let Some(v) = &self.commit {
            f('c', v);
        }
        if let Some(v) = self.provider_priority {
            f('k', &v.to_string());
        }
        let list = |deps: &[ApkDep]| deps.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ");
        for (c, deps) in [('D', &self.depends), ('p', &self.provides), ('i', &self.install_if)] {
            if !deps.is_empty() {
                f(c, &list(deps));
            }
        }
        for (c, v) in &self.extra {
            f(*c, v);
        }
        out.push('\n');
    }
}

/// Parses `APKINDEX` text. Malformed lines and entries without `P:`/`V:`
/// fail the whole index (as in apk-tools); problems confined to one entry
/// mark only that entry uninstallable.
pub fn parse_text(text: &str) -> Result<Vec<IndexEntry>, IndexError> {
    let mut entries = Vec::with_capacity(text.len() / 600);
    let mut cur: Option<(usize, IndexEntry)> = None;
    let finish = |cur: &mut Option<(usize, IndexEntry)>, entries: &mut Vec<IndexEntry>| {
        if let Some((line, e)) = cur.take() {
            if e.name.is_empty() || e.version.is_empty() {
                return Err(IndexError::Format { line, why: "entry without P: or V:".into() });
            }
            entries.push(e);
        }
        Ok(())
    };
    for (i, line) in text.split('\n').enumerate() {
        let b = line.as_bytes();
        if b.len() < 2 {
            finish(&mut cur, &mut entries)?;
            continue;
        }
        if b[1] != b':' {
            let shown: String = line.chars().take(40).collect();
            return Err(IndexError::Format { line: i + 1, why: format!("expected `X:value`, found {shown:?}") });
        }
        let entry = &mut cur.get_or_insert_with(|| (i + 1, IndexEntry::default())).1;
        entry.add_field(b[0], &line[2..]);
    }
    finish(&mut cur, &mut entries)?;
    Ok(entries)
}

/// Writes entries as `APKINDEX` text.
pub fn format_text(entries: &[IndexEntry]) -> String {
    let mut s = String::with_capacity(entries.len() * 600);
    for e in entries {
        e.write_to(&mut s);
    }
    s
}

/// A read (and, unless read unverified, signature-checked) index.
#[derive(Clone, Debug)]
pub struct ApkIndex {
    /// `DESCRIPTION` (e.g. `v3.19.1-123-gabcdef`), if present.
    pub description: Option<String>,
    /// Packages in index order.
    pub entries: Vec<IndexEntry>,
    /// The trusted key that signed it, and how; `None` when read unverified.
    pub signed_by: Option<(String, SigAlgo)>,
}

/// Reads an `APKINDEX.tar.gz`, requiring a valid signature by a key in
/// `keys`.
pub fn read_index(bytes: &[u8], keys: &Keyring) -> Result<ApkIndex, IndexError> {
    let sigs = sign::read_signatures(bytes)?;
    let v = sign::verify(keys, &sigs.signatures, &bytes[sigs.signed_start..])?;
    let mut idx = read_content(&bytes[sigs.signed_start..])?;
    idx.signed_by = Some((v.key_name, v.algo));
    Ok(idx)
}

/// Reads an `APKINDEX.tar.gz` without checking signatures (local
/// repositories the user vouches for).
pub fn read_index_unverified(bytes: &[u8]) -> Result<ApkIndex, IndexError> {
    let sigs = sign::read_signatures(bytes)?;
    read_content(&bytes[sigs.signed_start..])
}

/// Most bytes of the `APKINDEX` member: far above any real repository's
/// index, and a bound on what an untrusted mirror's gzip can make
/// [`read_index_unverified`] allocate.
pub const MAX_INDEX_TEXT_BYTES: u64 = 256 << 20;

/// Most bytes of the one-line `DESCRIPTION` member.
pub const MAX_DESCRIPTION_BYTES: u64 = 64 << 10;

fn read_content(compressed: &[u8]) -> Result<ApkIndex, IndexError> {
    let corrupt = |source| IndexError::Gzip(crate::SegmentError::Corrupt { offset: 0, source });
    let mut tar = TarReader::new(segments::decompress_slice(compressed));
    let mut description = None;
    let mut text = None;
    while let Some(e) = tar.next_entry()? {
        let limit = |member: &'static str, max: u64| if e.size > max { Err(IndexError::TooLarge { member, size: e.size, max }) } else { Ok(()) };
        match e.path.as_str() {
            "DESCRIPTION" => {
                limit("DESCRIPTION", MAX_DESCRIPTION_BYTES)?;
                description = Some(String::from_utf8_lossy(&tar.read_data(&e)?).into_owned());
            }
            "APKINDEX" => {
                limit("APKINDEX", MAX_INDEX_TEXT_BYTES)?;
                let data = tar.read_data(&e)?;
                let t = String::from_utf8(data)
                    .map_err(|_| IndexError::Format { line: 0, why: "APKINDEX is not UTF-8".into() })?;
                text = Some(t);
            }
            _ => {}
        }
    }
    // Trailing bytes after the end-of-archive marker must still be valid
    // gzip; reading them surfaces corruption instead of ignoring it.
    let mut rest = tar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(corrupt)?;
    let text = text.ok_or(IndexError::MissingApkindex)?;
    Ok(ApkIndex { description, entries: parse_text(&text)?, signed_by: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "C:Q1EfatjsUqKYSrqv18O1FlA3hcIHI=\nP:docker\nV:24.0.7-r0\nA:x86_64\nS:123\nI:456\nT:Pack, ship and run\n\
U:https://www.docker.io/\nL:Apache-2.0\no:docker\nm:Someone <s@example.org>\nt:1700000000\nc:abc\nk:10\n\
D:containerd !docker-legacy so:libc.musl-x86_64.so.1 tini-static>=0.19\np:cmd:docker=24.0.7-r0 docker-engine\n\
i:docker-cli bash-completion\nz:future-lowercase\n\nP:b\nV:1\nX:new-feature\n\nP:c\nV:2\nF:usr\n";

    #[test]
    fn parses_every_field() {
        let e = parse_text(SAMPLE).unwrap();
        assert_eq!(e.len(), 3);
        let d = &e[0];
        assert!(matches!(d.checksum, Some(Checksum::Sha1(_))));
        assert_eq!((d.name.as_str(), d.version.as_str(), d.arch.as_deref()), ("docker", "24.0.7-r0", Some("x86_64")));
        assert_eq!((d.size, d.installed_size), (123, 456));
        assert_eq!(d.description, "Pack, ship and run");
        assert_eq!(d.url, "https://www.docker.io/");
        assert_eq!(d.license, "Apache-2.0");
        assert_eq!(d.origin.as_deref(), Some("docker"));
        assert_eq!(d.maintainer.as_deref(), Some("Someone <s@example.org>"));
        assert_eq!(d.build_time, Some(1700000000));
        assert_eq!(d.commit.as_deref(), Some("abc"));
        assert_eq!(d.provider_priority, Some(10));
        assert_eq!(d.depends.len(), 4);
        assert!(d.depends[1].conflict);
        assert_eq!(d.depends[3].version, "0.19");
        assert_eq!(d.provides[0].name, "cmd:docker");
        assert_eq!(d.install_if.len(), 2);
        assert_eq!(d.extra, [('z', "future-lowercase".to_string())]);
        assert!(d.is_installable());
        // Unknown upper-case field: kept, but the package is uninstallable.
        assert!(!e[1].is_installable(), "{:?}", e[1]);
        assert_eq!(e[1].extra, [('X', "new-feature".to_string())]);
        // Installed-database fields are tolerated.
        assert!(e[2].is_installable());
        // Round trip: writing and re-reading gives the same entries.
        assert_eq!(parse_text(&format_text(&e)).unwrap(), e);
    }

    #[test]
    fn malformed_index_is_refused() {
        let err = parse_text("P:a\nV:1\n\nno colon here\n").unwrap_err();
        assert!(matches!(err, IndexError::Format { line: 4, .. }), "{err}");
        assert!(parse_text("P:a\n\n").is_err(), "entry without version");
        let e = parse_text("P:a\nV:1\nD:b>=1.0-x\nS:big\n").unwrap();
        assert_eq!(e[0].uninstallable.len(), 2, "{:?}", e[0].uninstallable);
    }
}
