//! The docker-archive writer: one tar holding docker's `manifest.json` and
//! an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/`), as
//! `docker save` of docker 25+ writes it, so `docker load`, skopeo
//! (`docker-archive:`) and OCI tools all read the same file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dinv_fstree::tar::{Header, TarBuilder};

use crate::{ImageDigests, ImageError, ImageParts, ImageSpec, Layer};

enum Source<'a> {
    Bytes(&'a [u8]),
    File(&'a Path, u64),
}

/// Writes a docker-archive tar at `path` (temp file + rename).
pub fn write_docker_archive(path: &Path, spec: &ImageSpec, layers: &[Layer]) -> Result<ImageDigests, ImageError> {
    write_docker_archive_parts(path, spec, &ImageParts::new(spec, layers)?, layers)
}

/// [`write_docker_archive`] of parts made already ([`ImageParts::with_config`]).
pub fn write_docker_archive_parts(path: &Path, spec: &ImageSpec, parts: &ImageParts, layers: &[Layer]) -> Result<ImageDigests, ImageError> {
    let docker_manifest = parts.docker_manifest(spec, layers);
    let index = ImageParts::index_json(std::slice::from_ref(&parts.index_entry));

    // Members sorted by name; a layer used twice is stored once.
    let mut members: BTreeMap<String, Source> = BTreeMap::new();
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    for l in layers {
        members.insert(blob(&l.digest), Source::File(&l.path, l.size));
    }
    members.insert(blob(&parts.digests.config), Source::Bytes(&parts.config));
    members.insert(blob(&parts.digests.manifest), Source::Bytes(&parts.manifest));
    members.insert("index.json".into(), Source::Bytes(&index));
    members.insert("manifest.json".into(), Source::Bytes(&docker_manifest));
    members.insert("oci-layout".into(), Source::Bytes(ImageParts::oci_layout()));

    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = crate::output_temp_file(parent, ".docker-archive-").map_err(ImageError::io(parent))?;
    let file = tmp.as_file().try_clone().map_err(ImageError::io(tmp.path()))?;
    let mut tar = TarBuilder::new(BufWriter::new(file));
    let mtime = spec.created.max(0);
    let result = (|| -> Result<(), (PathBuf, io::Error)> {
        fn at(p: &Path) -> impl FnOnce(io::Error) -> (PathBuf, io::Error) + '_ {
            move |e| (p.to_path_buf(), e)
        }
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = Header::new(dir, b'5');
            h.mode = 0o755;
            h.mtime = mtime;
            tar.append(&h, &mut io::empty()).map_err(at(tmp.path()))?;
        }
        for (name, source) in &members {
            let mut h = Header::new(name, b'0');
            h.mtime = mtime;
            match source {
                Source::Bytes(b) => {
                    h.size = b.len() as u64;
                    tar.append(&h, &mut &b[..]).map_err(at(tmp.path()))?;
                }
                Source::File(p, size) => {
                    h.size = *size;
                    let mut f = File::open(p).map_err(at(p))?;
                    let actual = f.metadata().map_err(at(p))?.len();
                    if actual != *size {
                        let why = format!("is {actual} bytes, the layer says {size}");
                        return Err((p.to_path_buf(), io::Error::new(io::ErrorKind::InvalidData, why)));
                    }
                    tar.append(&h, &mut f).map_err(at(p))?;
                }
            }
        }
        tar.finish().and_then(|mut w| w.flush()).map_err(at(tmp.path()))
    })();
    result.map_err(|(path, source)| ImageError::Io { path, source })?;
    tmp.persist(path).map_err(|e| ImageError::Io { path: path.to_path_buf(), source: e.error })?;
    Ok(parts.digests.clone())
}
