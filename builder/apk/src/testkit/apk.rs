//! Signed `.apk` files from a spec, laid out as abuild writes them.

use std::collections::BTreeMap;
use std::ops::Range;

use dinv_fstree::tar::Header;
use dinv_fstree::Meta;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::tar::{StyledTar, TarStyle};
use super::tar::gzip;
use super::TestKey;
use crate::sign::SigAlgo;
use crate::{ApkDep, Checksum, IndexEntry, PkgInfo};

/// What a data-member entry is.
#[derive(Clone, Debug)]
pub enum SpecKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// Hard link to an earlier file (path inside the package).
    Hardlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One member of the data tar.
#[derive(Clone, Debug)]
pub struct SpecEntry {
    /// Relative path without leading `/` (directories without trailing `/`).
    pub path: String,
    pub kind: SpecKind,
    pub meta: Meta,
}

/// A package to build.
#[derive(Clone, Debug)]
pub struct PackageSpec {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub description: String,
    pub url: String,
    pub license: String,
    pub origin: Option<String>,
    pub maintainer: Option<String>,
    pub commit: Option<String>,
    pub build_date: u64,
    /// Dependency atoms (`foo>=1`, `!bar`, `so:libc.musl-x86_64.so.1`).
    pub depends: Vec<String>,
    pub provides: Vec<String>,
    pub install_if: Vec<String>,
    pub replaces: Vec<String>,
    pub triggers: Vec<String>,
    pub provider_priority: Option<u32>,
    /// Data members in archive order.
    pub entries: Vec<SpecEntry>,
    /// `(name, bytes)` with names like `post-install`.
    pub scripts: Vec<(String, Vec<u8>)>,
}

impl PackageSpec {
    /// A package for x86_64 with no files.
    pub fn new(name: &str, version: &str) -> Self {
        PackageSpec {
            name: name.into(),
            version: version.into(),
            arch: "x86_64".into(),
            description: format!("{name} test package"),
            url: "https://example.invalid/".into(),
            license: "MIT".into(),
            origin: Some(name.into()),
            maintainer: Some("Test <test@example.invalid>".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            build_date: 1_700_000_000,
            depends: Vec::new(),
            provides: Vec::new(),
            install_if: Vec::new(),
            replaces: Vec::new(),
            triggers: Vec::new(),
            provider_priority: None,
            entries: Vec::new(),
            scripts: Vec::new(),
        }
    }

    /// Adds a dependency atom.
    pub fn depend(mut self, d: &str) -> Self {
        self.depends.push(d.into());
        self
    }

    /// Adds a provided name (`so:libfoo.so.1=1`, `cmd:foo`).
    pub fn provide(mut self, p: &str) -> Self {
        self.provides.push(p.into());
        self
    }

    /// Adds an install_if condition.
    pub fn install_if(mut self, c: &str) -> Self {
        self.install_if.push(c.into());
        self
    }

    /// Adds any entry.
    pub fn entry(mut self, path: &str, kind: SpecKind, meta: Meta) -> Self {
        self.entries.push(SpecEntry { path: path.into(), kind, meta });
        self
    }

    /// Adds a root-owned regular file.
    pub fn file(self, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.entry(path, SpecKind::File(bytes.into()), Meta::root(mode))
    }

    /// Adds a root-owned directory.
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.entry(path, SpecKind::Dir, Meta::root(mode))
    }

    /// Adds a symlink.
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(path, SpecKind::Symlink(target.into()), Meta::root(0o777))
    }

    /// Adds a hard link to an earlier file.
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(path, SpecKind::Hardlink(target.into()), Meta::root(0o644))
    }

    /// Adds a maintainer script (`post-install`, `trigger`, ...).
    pub fn script(mut self, name: &str, body: impl Into<Vec<u8>>) -> Self {
        self.scripts.push((name.into(), body.into()));
        self
    }

    fn installed_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| if let SpecKind::File(b) = &e.kind { b.len() as u64 } else { 0 })
            .sum()
    }

    fn deps(list: &[String]) -> Vec<ApkDep> {
        list.iter().map(|d| ApkDep::parse(d).unwrap_or_else(|e| panic!("test spec: {e}"))).collect()
    }

    /// The `.PKGINFO` this spec produces (without datahash).
    pub fn pkginfo(&self) -> PkgInfo {
        PkgInfo {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            url: self.url.clone(),
            build_date: Some(self.build_date),
            packager: Some("dinv-apk testkit".into()),
            size: self.installed_size(),
            arch: self.arch.clone(),
            origin: self.origin.clone(),
            commit: self.commit.clone(),
            maintainer: self.maintainer.clone(),
            license: self.license.clone(),
            depends: Self::deps(&self.depends),
            provides: Self::deps(&self.provides),
            install_if: Self::deps(&self.install_if),
            replaces: Self::deps(&self.replaces),
            replaces_priority: None,
            triggers: self.triggers.clone(),
            provider_priority: self.provider_priority,
            datahash: None,
            extra: Vec::new(),
        }
    }
}

/// Deliberate damage, applied after the honest hashes and signature exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    #[default]
    None,
    /// The control member is replaced (an extra dependency) after signing.
    ControlAfterSigning,
    /// The data member is replaced (a file's bytes changed) after its hash
    /// went into `.PKGINFO`.
    DataAfterHashing,
}

/// How to build a package.
#[derive(Clone, Copy, Debug)]
pub struct ApkOptions<'k> {
    /// Signing key; `None` builds an unsigned package.
    pub key: Option<&'k TestKey>,
    pub algo: SigAlgo,
    /// gzip level (abuild uses 9; 1 is much faster for big fixtures).
    pub compression: u32,
    /// Leave `datahash` out of `.PKGINFO` (old-style package).
    pub omit_datahash: bool,
    pub tamper: Tamper,
    /// Tar header style of the signature, control and data members.
    pub style: TarStyle,
}

impl<'k> ApkOptions<'k> {
    /// Signed with `key` (SHA-1, as abuild still does), gzip level 6, in
    /// Alpine v3.22's PAX-headed style.
    pub fn signed(key: &'k TestKey) -> Self {
        ApkOptions {
            key: Some(key),
            algo: SigAlgo::RsaSha1,
            compression: 6,
            omit_datahash: false,
            tamper: Tamper::None,
            style: TarStyle::Pax,
        }
    }
}

/// A built package and what an honest index would say about it.
#[derive(Clone, Debug)]
pub struct BuiltApk {
    pub bytes: Vec<u8>,
    /// The identity computed before any tampering.
    pub checksum: Checksum,
    /// `.PKGINFO` as written (before any tampering).
    pub pkginfo: PkgInfo,
    pub control_range: Range<usize>,
    pub data_range: Range<usize>,
}

impl BuiltApk {
    /// The index entry `apk index` would write for this file.
    pub fn index_entry(&self) -> IndexEntry {
        let p = &self.pkginfo;
        IndexEntry {
            checksum: Some(self.checksum),
            name: p.name.clone(),
            version: p.version.clone(),
            arch: Some(p.arch.clone()),
            size: self.bytes.len() as u64,
            installed_size: p.size,
            description: p.description.clone(),
            url: p.url.clone(),
            license: p.license.clone(),
            origin: p.origin.clone(),
            maintainer: p.maintainer.clone(),
            build_time: p.build_date,
            commit: p.commit.clone(),
            provider_priority: p.provider_priority,
            depends: p.depends.clone(),
            provides: p.provides.clone(),
            install_if: p.install_if.clone(),
            extra: Vec::new(),
            uninstallable: Vec::new(),
        }
    }
}

fn data_tar(spec: &PackageSpec, damage: bool, style: TarStyle) -> Vec<u8> {
    let mut tar = StyledTar::new(style);
    let mut damaged = !damage;
    for e in &spec.entries {
        let (typeflag, link, dev, body): (u8, &str, (u32, u32), &[u8]) = match &e.kind {
            SpecKind::Dir => (b'5', "", (0, 0), &[]),
            SpecKind::File(b) => (b'0', "", (0, 0), b),
            SpecKind::Symlink(t) => (b'2', t, (0, 0), &[]),
            SpecKind::Hardlink(t) => (b'1', t, (0, 0), &[]),
            SpecKind::CharDevice { major, minor } => (b'3', "", (*major, *minor), &[]),
            SpecKind::BlockDevice { major, minor } => (b'4', "", (*major, *minor), &[]),
            SpecKind::Fifo => (b'6', "", (0, 0), &[]),
        };
        let mut body = body.to_vec();
        if !damaged && typeflag == b'0' {
            body.extend_from_slice(b"#tampered");
            damaged = true;
        }
        let mut pax = BTreeMap::new();
        for (k, v) in &e.meta.xattrs {
            pax.insert(format!("SCHILY.xattr.{k}"), v.clone());
        }
        // abuild-tar --hash: files carry the SHA-1 of their content,
        // symlinks that of their target.
        match typeflag {
            b'0' => pax.insert("APK-TOOLS.checksum.SHA1".into(), hex::encode(Sha1::digest(&body)).into_bytes()),
            b'2' => pax.insert("APK-TOOLS.checksum.SHA1".into(), hex::encode(Sha1::digest(link)).into_bytes()),
            _ => None,
        };
        let path = if typeflag == b'5' { format!("{}/", e.path) } else { e.path.clone() };
        let h = Header {
            path,
            typeflag,
            mode: e.meta.mode,
            uid: e.meta.uid,
            gid: e.meta.gid,
            mtime: e.meta.mtime,
            size: body.len() as u64,
            link: link.to_string(),
            dev_major: dev.0,
            dev_minor: dev.1,
            pax,
        };
        tar.append(&h, &body);
    }
    assert!(damaged, "Tamper::DataAfterHashing needs a regular file in the package");
    tar.finish()
}

fn control_tar(pkginfo_text: &str, scripts: &[(String, Vec<u8>)], mtime: u64, style: TarStyle) -> Vec<u8> {
    let mut tar = StyledTar::new(style);
    let mut h = Header::new(".PKGINFO", b'0');
    h.size = pkginfo_text.len() as u64;
    h.mtime = mtime as i64;
    tar.append(&h, pkginfo_text.as_bytes());
    for (name, body) in scripts {
        let mut h = Header::new(&format!(".{name}"), b'0');
        h.mode = 0o755;
        h.size = body.len() as u64;
        h.mtime = mtime as i64;
        tar.append(&h, body);
    }
    // abuild-tar --cut: no end-of-archive blocks in the control member.
    tar.cut()
}

/// A gzipped tar holding one `.SIGN.*` file, without end marker (as
/// abuild-sign writes it: `tar -c .SIGN.* | abuild-tar --cut | gzip`).
pub(crate) fn signature_member(key: &TestKey, algo: SigAlgo, signed: &[u8], level: u32, style: TarStyle) -> Vec<u8> {
    let sig = key.sign(algo, signed);
    let mut tar = StyledTar::new(style);
    let mut h = Header::new(&algo.file_name(&key.name), b'0');
    h.size = sig.len() as u64;
    h.mtime = 1_760_000_000;
    tar.append(&h, &sig);
    gzip(&tar.cut(), level)
}

/// Builds a `.apk`: [signature] + control + data members.
pub fn build_apk(spec: &PackageSpec, opts: &ApkOptions) -> BuiltApk {
    let data_gz = gzip(&data_tar(spec, false, opts.style), opts.compression);
    let mut pkginfo = spec.pkginfo();
    if !opts.omit_datahash {
        pkginfo.datahash = Some(Sha256::digest(&data_gz).into());
    }
    let control_gz = gzip(&control_tar(&pkginfo.to_text(), &spec.scripts, spec.build_date, opts.style), opts.compression);
    let identity: Vec<u8> = if opts.omit_datahash {
        [&control_gz[..], &data_gz[..]].concat()
    } else {
        control_gz.clone()
    };
    let checksum = Checksum::sha1_of(&identity);
    let sig_gz = opts
        .key
        .map(|k| signature_member(k, opts.algo, &identity, opts.compression, opts.style))
        .unwrap_or_default();
    let control_gz = match opts.tamper {
        Tamper::ControlAfterSigning => {
            let text = pkginfo.to_text().replace("pkgdesc = ", "depend = evil-backdoor\npkgdesc = ");
            gzip(&control_tar(&text, &spec.scripts, spec.build_date, opts.style), opts.compression)
        }
        _ => control_gz,
    };
    let data_gz = match opts.tamper {
        Tamper::DataAfterHashing => gzip(&data_tar(spec, true, opts.style), opts.compression),
        _ => data_gz,
    };
    let c0 = sig_gz.len();
    let d0 = c0 + control_gz.len();
    let mut bytes = sig_gz;
    bytes.reserve(control_gz.len() + data_gz.len());
    bytes.extend_from_slice(&control_gz);
    bytes.extend_from_slice(&data_gz);
    let end = bytes.len();
    BuiltApk {
        bytes,
        checksum,
        pkginfo,
        control_range: c0..d0,
        data_range: d0..end,
    }
}
