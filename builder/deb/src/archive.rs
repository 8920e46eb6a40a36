//! `.deb` files: an `ar` archive of `debian-binary`, `control.tar*` and
//! `data.tar*`, read as a stream so the data member never sits in memory.

use std::collections::BTreeMap;
use std::io::{self, Read};

use dinv_fstree::tar::{EntryType, TarReader};
use sha2::{Digest, Sha256};

use crate::compression::{Compression, Decoder};
use crate::deb822;
use crate::DebError;

/// Control tarballs are a few KiB; anything near this is not a real package.
const MAX_CONTROL_BYTES: u64 = 64 << 20;

/// `debian-binary` holds `2.0\n`; dpkg reads a few bytes of it at most.
const MAX_VERSION_BYTES: u64 = 1 << 10;

/// Maintainer scripts dpkg runs (or debconf's `config`), in a stable order.
pub const MAINTAINER_SCRIPTS: [&str; 5] = ["preinst", "postinst", "prerm", "postrm", "config"];

/// Checks a downloaded blob against the size and SHA256 the signed index
/// lists; `what` names it (a package) in the error.
pub fn verify_blob(bytes: &[u8], expected_sha256_hex: &str, expected_size: u64, what: &str) -> Result<(), DebError> {
    verify_reader(&mut &bytes[..], expected_sha256_hex, expected_size, what)
}

/// [`verify_blob`] over a stream (a file on disk is never read into
/// memory): the size and SHA-256 of everything `r` yields.
pub fn verify_reader(r: &mut dyn Read, expected_sha256_hex: &str, expected_size: u64, what: &str) -> Result<(), DebError> {
    let mut h = Sha256::new();
    let n = std::io::copy(r, &mut h).map_err(|e| DebError::io(what.to_string(), e))?;
    if n != expected_size {
        return Err(DebError::Size { what: what.to_string(), expected: expected_size, actual: n });
    }
    let actual = hex::encode(h.finalize());
    if !actual.eq_ignore_ascii_case(expected_sha256_hex.trim()) {
        return Err(DebError::Checksum { what: what.to_string(), expected: expected_sha256_hex.to_string(), actual });
    }
    Ok(())
}

/// [`verify_reader`] over a file.
pub fn verify_file(path: &std::path::Path, expected_sha256_hex: &str, expected_size: u64, what: &str) -> Result<(), DebError> {
    let mut f = std::fs::File::open(path).map_err(|e| DebError::io(what.to_string(), e))?;
    verify_reader(&mut f, expected_sha256_hex, expected_size, what)
}

/// What a package's control tarball holds.
#[derive(Clone, Debug, Default)]
pub struct DebControl {
    /// The fields of `control`, in order (multi-line values `\n`-joined).
    pub fields: Vec<(String, String)>,
    /// Paths listed in `conffiles` (absolute, as written).
    pub conffiles: Vec<String>,
    /// Which of [`MAINTAINER_SCRIPTS`] the package has.
    pub scripts: Vec<String>,
    /// Every regular file of the control tarball by name (`postinst`,
    /// `md5sums`, `triggers`, ...).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl DebControl {
    /// A control field by name (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One `ar` member header.
struct ArMember {
    name: String,
    size: u64,
}

/// A `.deb` opened up to its data member: control already parsed, data
/// still unread in the underlying stream.
pub struct DebReader<R: Read> {
    package: String,
    control: DebControl,
    data_name: String,
    data_compression: Compression,
    data_size: u64,
    inner: R,
}

fn read_member_header<R: Read>(r: &mut R, package: &str) -> Result<Option<ArMember>, DebError> {
    let mut h = [0u8; 60];
    let mut got = 0;
    while got < 60 {
        let n = r.read(&mut h[got..]).map_err(|e| DebError::io(format!("{package}.deb"), e))?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(DebError::Archive { package: package.into(), why: "truncated ar member header".into() });
        }
        got += n;
    }
    let bad = |why: &str| DebError::Archive { package: package.into(), why: why.into() };
    if &h[58..60] != b"`\n" {
        return Err(bad("bad ar member header (no terminator)"));
    }
    let name = std::str::from_utf8(&h[0..16]).map_err(|_| bad("ar member name is not text"))?;
    // GNU ar ends names with `/`; dpkg pads with spaces.
    let name = name.trim_end_matches(' ').trim_end_matches('/').to_string();
    let size = std::str::from_utf8(&h[48..58])
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| bad("ar member size is not a number"))?;
    Ok(Some(ArMember { name, size }))
}

/// Reads a member's bytes and its padding byte.
fn read_member<R: Read>(r: &mut R, m: &ArMember, package: &str) -> Result<Vec<u8>, DebError> {
    // The size field is untrusted: grow with the bytes that actually arrive.
    let mut v = Vec::with_capacity(m.size.min(64 << 10) as usize);
    r.take(m.size).read_to_end(&mut v).map_err(|e| DebError::io(format!("{package}.deb: member {}", m.name), e))?;
    if v.len() as u64 != m.size {
        return Err(DebError::Archive { package: package.into(), why: format!("member {} is truncated", m.name) });
    }
    skip_padding(r, m, package)?;
    Ok(v)
}

fn skip_padding<R: Read>(r: &mut R, m: &ArMember, package: &str) -> Result<(), DebError> {
    if m.size % 2 == 1 {
        let mut pad = [0u8; 1];
        r.read_exact(&mut pad).map_err(|e| DebError::io(format!("{package}.deb: padding after {}", m.name), e))?;
    }
    Ok(())
}

fn member_compression(name: &str, stem: &str, package: &str) -> Result<Compression, DebError> {
    match &name[stem.len()..] {
        "" => Ok(Compression::None),
        ".gz" => Ok(Compression::Gzip),
        ".xz" => Ok(Compression::Xz),
        ".zst" => Ok(Compression::Zstd),
        other => Err(DebError::Archive {
            package: package.into(),
            why: format!("member {name}: unsupported compression {other:?}"),
        }),
    }
}

fn parse_control_tar(bytes: &[u8], c: Compression, member: &str, package: &str) -> Result<DebControl, DebError> {
    let dec = Decoder::new(bytes, c).map_err(|e| DebError::io(format!("{package}.deb: {member}"), e))?;
    let mut tar = TarReader::new(dec.take(MAX_CONTROL_BYTES));
    let tar_err = |source| DebError::Tar { package: package.into(), member: member.into(), source };
    let mut files = BTreeMap::new();
    while let Some(e) = tar.next_entry().map_err(tar_err)? {
        if e.entry_type != EntryType::Regular {
            continue;
        }
        let data = tar.read_data(&e).map_err(tar_err)?;
        let name = e.path.trim_start_matches("./").to_string();
        files.insert(name, data);
    }
    let text = |name: &str| -> Result<Option<&str>, DebError> {
        files
            .get(name)
            .map(|b| {
                std::str::from_utf8(b).map_err(|_| DebError::Archive {
                    package: package.into(),
                    why: format!("{member}: {name} is not UTF-8"),
                })
            })
            .transpose()
    };
    let control = text("control")?
        .ok_or_else(|| DebError::Archive { package: package.into(), why: format!("{member} has no control file") })?;
    let what = format!("{package}.deb control");
    let paras = deb822::parse_all(control, &what)?;
    let [p] = paras.as_slice() else {
        return Err(DebError::malformed(what.clone(), format!("expected one paragraph, found {}", paras.len())));
    };
    let fields = p.fields().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let conffiles = text("conffiles")?
        .unwrap_or("")
        .lines()
        // Newer dpkg prefixes flags (`remove-on-upgrade /etc/x`); the path is last.
        .filter_map(|l| l.split_whitespace().last())
        .map(str::to_string)
        .collect();
    let scripts = MAINTAINER_SCRIPTS.iter().filter(|s| files.contains_key(**s)).map(|s| s.to_string()).collect();
    Ok(DebControl { fields, conffiles, scripts, files })
}

/// Opens a `.deb` stream: checks the `ar` layout and format version,
/// parses the control member, and stops at the start of the data member.
/// `package` names the file in errors.
pub fn open_deb<R: Read>(mut r: R, package: &str) -> Result<DebReader<R>, DebError> {
    let bad = |why: String| DebError::Archive { package: package.into(), why };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|e| DebError::io(format!("{package}.deb"), e))?;
    if &magic != b"!<arch>\n" {
        return Err(bad("not an ar archive (no `!<arch>` magic)".into()));
    }
    let first = read_member_header(&mut r, package)?.ok_or_else(|| bad("empty ar archive".into()))?;
    if first.name != "debian-binary" {
        return Err(bad(format!("first member is {:?}, not debian-binary", first.name)));
    }
    if first.size > MAX_VERSION_BYTES {
        return Err(bad(format!("debian-binary is {} bytes, too large for a format version", first.size)));
    }
    let version = read_member(&mut r, &first, package)?;
    if !version.starts_with(b"2.") {
        return Err(bad(format!("unsupported format version {:?}", String::from_utf8_lossy(&version).trim())));
    }
    let mut control: Option<DebControl> = None;
    loop {
        let m = read_member_header(&mut r, package)?.ok_or_else(|| bad("no data.tar member".into()))?;
        if m.name.starts_with('_') {
            // Reserved for local additions; dpkg ignores them.
            let n = io::copy(&mut (&mut r).take(m.size), &mut io::sink())
                .map_err(|e| DebError::io(format!("{package}.deb"), e))?;
            if n != m.size {
                return Err(bad(format!("member {} is truncated", m.name)));
            }
            skip_padding(&mut r, &m, package)?;
        } else if m.name.starts_with("control.tar") && control.is_none() {
            if m.size > MAX_CONTROL_BYTES {
                return Err(bad(format!("{} is {} bytes, too large for a control member", m.name, m.size)));
            }
            let c = member_compression(&m.name, "control.tar", package)?;
            let bytes = read_member(&mut r, &m, package)?;
            control = Some(parse_control_tar(&bytes, c, &m.name, package)?);
        } else if m.name.starts_with("data.tar") {
            let control = control.ok_or_else(|| bad("data.tar comes before control.tar".into()))?;
            let data_compression = member_compression(&m.name, "data.tar", package)?;
            return Ok(DebReader {
                package: package.into(),
                control,
                data_name: m.name,
                data_compression,
                data_size: m.size,
                inner: r,
            });
        } else {
            return Err(bad(format!("unexpected member {:?}", m.name)));
        }
    }
}

impl<R: Read> DebReader<R> {
    /// The parsed control member.
    pub fn control(&self) -> &DebControl {
        &self.control
    }

    /// Takes the parsed control member out (e.g. before [`DebReader::into_data`]).
    pub fn take_control(&mut self) -> DebControl {
        std::mem::take(&mut self.control)
    }

    /// The data member's name (`data.tar.xz`).
    pub fn data_member(&self) -> &str {
        &self.data_name
    }

    /// The data member's compression.
    pub fn data_compression(&self) -> Compression {
        self.data_compression
    }

    /// The data member's size in the archive (compressed).
    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// The package label given to [`open_deb`].
    pub fn package(&self) -> &str {
        &self.package
    }

    /// The data member exactly as stored (still compressed).
    pub fn into_raw_data(self) -> io::Take<R> {
        self.inner.take(self.data_size)
    }

    /// A reader of the decompressed data tar.
    pub fn into_data(self) -> Result<Decoder<io::Take<R>>, DebError> {
        let what = format!("{}.deb: {}", self.package, self.data_name);
        Decoder::new(self.inner.take(self.data_size), self.data_compression).map_err(|e| DebError::io(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: &str) -> Vec<u8> {
        format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 0, "100644").into_bytes()
    }

    /// Found while fuzzing (read in the code, confirmed through the
    /// deb_archive target): an ar member's decimal size went
    /// straight into `Vec::with_capacity`, so a 70-byte file asked for
    /// 10 GB (libFuzzer: `out-of-memory (malloc(9999999999))`).
    #[test]
    fn member_sizes_do_not_decide_allocations() {
        let mut f = b"!<arch>\n".to_vec();
        f.extend(header("debian-binary", "9999999999"));
        f.extend_from_slice(b"2.0\n");
        let e = open_deb(&f[..], "big").err().expect("refused").to_string();
        assert!(e.contains("debian-binary is 9999999999 bytes"), "{e}");
        // Sizes below the limits but beyond the data: truncated, quickly.
        let mut f = b"!<arch>\n".to_vec();
        f.extend(header("debian-binary", "1000"));
        f.extend_from_slice(b"2.0\n");
        let e = open_deb(&f[..], "short").err().expect("refused").to_string();
        assert!(e.contains("truncated"), "{e}");
        let mut f = b"!<arch>\n".to_vec();
        f.extend(header("debian-binary", "4"));
        f.extend_from_slice(b"2.0\n");
        f.extend(header("control.tar", "60000000"));
        f.extend_from_slice(b"abc");
        let e = open_deb(&f[..], "short").err().expect("refused").to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
