//! The image stage: the outer Docker image users run. Layer 1 is the
//! configured runtime tree (QEMU, docker CLI, libraries; see
//! `configure::runtime`);
//! layer 2 is DinV itself (launcher, kernel, initramfs, root filesystem,
//! launcher.json). Written as a docker-archive (`image.tar`, also an OCI
//! archive) and an OCI layout (`oci/`), deterministically from the epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dinv_contract::launcher::{append_for, LauncherConfig, DEFAULT_CONFIG_PATH as LAUNCHER_CONFIG_PATH, INITRAMFS_PATH, KERNEL_PATH, LAUNCHER_PATH, PVH_KERNEL_PATH, ROOTFS_PATH};
use dinv_fstree::{BackingFile, Content, Meta, Node, NodeKind, Replace, Tree, TreePath};
use dinv_image::{rfc3339, write_docker_archive, write_oci_layout, Healthcheck, ImageDigests, ImageSpec, LayerCompression, LayerOptions};
use super::context::Emit;
use super::outputs::{ImageSummary, LayerSummary};
use crate::error::{Stage, StageFailure};
use crate::cache::Cache;
use crate::progress::Progress;
use crate::recipe::{ImageCompression, LoadedRecipe};
use crate::{Error, Result};

/// PATH in the image.
pub const IMAGE_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn fail(e: impl Into<StageFailure>) -> Error {
    Error::stage(Stage::Image, e)
}


/// Writes `image.tar` and `oci/` when the guest has a kernel to boot and
/// the recipe a runtime.
pub fn emit(e: &mut Emit) -> Result<()> {
    let (Some(kernel), Some(runtime)) = (&e.kernel, e.runtime) else {
        if e.runtime.is_some() {
            tracing::warn!("no guest kernel, so no bootable image: only the root filesystem is built");
        }
        return Ok(());
    };
    let rootfs = e.out.join(super::outputs::ROOTFS);
    let inputs = ImageInputs {
        recipe: e.recipe,
        runtime,
        vmlinuz: kernel.vmlinux.as_deref().unwrap_or(&kernel.vmlinuz),
        pvh: kernel.vmlinux.is_some(),
        initramfs: Some(&kernel.initramfs),
        rootfs: &rootfs,
        epoch: e.epoch,
        revision: e.env.host.revision.clone(),
        cache: Some(&e.env.cache),
        progress: Some(&e.env.progress),
    };
    let img = build_image(&inputs, e.out)?;
    e.cached_layers = img.cached_layers;
    e.image = Some(ImageSummary { reference: img.reference, manifest_digest: img.digests.manifest, config_digest: img.digests.config, layers: img.layers });
    Ok(())
}

/// What the image stage is built from.
pub struct ImageInputs<'a> {
    pub recipe: &'a LoadedRecipe,
    /// The outer image's base: runtime packages unpacked (QEMU, docker CLI, libs).
    pub runtime: &'a Tree,
    /// Guest kernel file: the bzImage, or the PVH `vmlinux` when `pvh`.
    pub vmlinuz: &'a Path,
    /// `vmlinuz` is the uncompressed kernel QEMU boots by PVH.
    pub pvh: bool,
    /// Guest initramfs file, if the guest boots through one.
    pub initramfs: Option<&'a Path>,
    /// ext4 root filesystem image file.
    pub rootfs: &'a Path,
    /// SOURCE_DATE_EPOCH: every mtime and the image's creation time.
    pub epoch: i64,
    /// Source revision for `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// The layer cache; `None` compresses every layer.
    pub cache: Option<&'a Cache>,
    /// Where compression progress is drawn; `None` draws nothing.
    pub progress: Option<&'a Progress>,
}


/// What the image stage wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageOutputs {
    /// `name:tag`.
    pub reference: String,
    /// `out_dir/image.tar` (docker-archive, also an OCI archive).
    pub docker_archive: PathBuf,
    /// `out_dir/oci` (OCI image layout).
    pub oci_layout: PathBuf,
    /// Manifest and config digests (identical for both formats).
    pub digests: ImageDigests,
    /// Layers bottom to top.
    pub layers: Vec<LayerSummary>,
    /// Names of the layers assembled entirely from cached pieces.
    pub cached_layers: Vec<String>,
}

/// Builds both layers and writes `out_dir/image.tar` and `out_dir/oci/`.
pub fn build_image(inputs: &ImageInputs, out_dir: &Path) -> Result<ImageOutputs> {
    let spec = image_spec(inputs);
    spec.validate().map_err(|e| fail(StageFailure::from(e).of("image.name/image.tag")))?;
    std::fs::create_dir_all(out_dir).map_err(Error::io(out_dir))?;
    // Layer blobs are staged here; the OCI writer hard-links them, the
    // archive writer copies them, then the directory goes away.
    let blobs = tempfile::Builder::new().prefix(".image-layers-").tempdir_in(out_dir).map_err(Error::io(out_dir))?;

    // Configured already (configure::runtime: packages, keep, the
    // container's /tmp, passwd and friends).
    let runtime = inputs.runtime;
    let dinv = dinv_layer_tree(inputs)?;
    let image = &inputs.recipe.recipe.image;
    let level = image.compression_level.unwrap_or(image.compression.default_level());
    let compression = match image.compression {
        ImageCompression::Gzip => LayerCompression::Gzip { level: level as u32 },
        ImageCompression::Zstd => LayerCompression::Zstd { level },
    };
    let mut layers = Vec::new();
    let mut cached = Vec::new();
    for (name, tree, created_by) in [
        ("runtime", runtime, "dinv-build: runtime packages"),
        ("dinv", &dinv, "dinv-build: dinv-launcher, kernel, initramfs, rootfs"),
    ] {
        let mut opts = LayerOptions::new(blobs.path(), created_by);
        opts.mtime = Some(inputs.epoch);
        opts.compression = compression;
        let progress = inputs.progress.cloned().unwrap_or_else(Progress::hidden);
        let (layer, stats) = super::layers::layer(inputs.cache, tree, &opts, &progress, &format!("layer {name}"))?;
        if stats.pieces > 0 && stats.reused == stats.pieces {
            cached.push(name.to_string());
        }
        layers.push(layer);
    }

    let archive = out_dir.join("image.tar");
    let digests = write_docker_archive(&archive, &spec, &layers).map_err(fail)?;
    let oci = out_dir.join("oci");
    let oci_digests = write_oci_layout(&oci, &spec, &layers).map_err(fail)?;
    if oci_digests != digests {
        return Err(fail(format!("the OCI layout ({}) and image.tar ({}) disagree", oci_digests.manifest, digests.manifest)));
    }
    let names = ["runtime", "dinv"];
    let layers = layers
        .iter()
        .zip(names)
        .map(|(l, name)| LayerSummary {
            name: name.into(),
            media_type: l.media_type.clone(),
            digest: l.digest.clone(),
            diff_id: l.diff_id.clone(),
            size: l.size,
            uncompressed_size: l.uncompressed_size,
        })
        .collect();
    Ok(ImageOutputs { reference: spec.reference(), docker_archive: archive, oci_layout: oci, digests, layers, cached_layers: cached })
}

/// The image's config: entrypoint, command, environment, ports, volumes,
/// health check and labels, from the recipe.
pub fn image_spec(inputs: &ImageInputs) -> ImageSpec {
    let r = &inputs.recipe.recipe;
    let mut spec = ImageSpec::new(&r.image.name, &r.image.tag, inputs.epoch);
    spec.architecture = r.arch().oci().into();
    spec.entrypoint = vec![LAUNCHER_PATH.into()];
    spec.cmd = r.image.cmd.clone();
    spec.env = vec![format!("PATH={IMAGE_PATH_ENV}"), "DOCKER_HOST=tcp://127.0.0.1:2375".into()];
    spec.env.extend(env_defaults(inputs.recipe).into_iter().map(|(k, v)| format!("{k}={v}")));
    spec.exposed_ports = vec!["2375/tcp".into()];
    spec.volumes = vec!["/docker".into(), "/volume".into()];
    spec.stop_signal = Some("SIGTERM".into());
    spec.healthcheck = Some(Healthcheck {
        test: vec!["CMD".into(), LAUNCHER_PATH.into(), "health".into()],
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        // Booting the guest and starting dockerd takes a while, more without KVM.
        start_period: Duration::from_secs(120),
        retries: 3,
    });
    spec.labels = labels(inputs);
    spec
}

/// The DINV_* variables set in the image's environment (the settings
/// table's original DinV variables, in its order). Empty values count as
/// unset for the launcher; they are there so `docker image inspect` shows
/// every knob.
pub fn env_defaults(l: &LoadedRecipe) -> Vec<(&'static str, String)> {
    crate::recipe::runtime::image_env(&l.recipe)
}

/// OCI labels: generated ones, overridden by the recipe's `image.labels`.
fn labels(inputs: &ImageInputs) -> BTreeMap<String, String> {
    let image = &inputs.recipe.recipe.image;
    let mut labels = BTreeMap::new();
    let mut put = |k: &str, v: &str| labels.insert(format!("org.opencontainers.image.{k}"), v.to_string());
    put("title", &image.name);
    put("version", &image.tag);
    put("created", &rfc3339(inputs.epoch));
    if let Some(rev) = &inputs.revision {
        put("revision", rev);
    }
    if let Some(url) = &image.source_url {
        put("source", url);
    }
    labels.extend(image.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// The kernel command line the image's launcher passes: the launcher's
/// base for the architecture, then `kernel.cmdline`.
pub fn kernel_cmdline(r: &crate::recipe::Recipe) -> String {
    let mut append = append_for(r.arch().rust());
    if let Some(extra) = r.kernel.cmdline.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        append.push(' ');
        append.push_str(extra);
    }
    append
}

/// `/etc/dinv/launcher.json`: the launcher's own config type, so a schema
/// change there breaks this build rather than the image at run time.
pub fn launcher_config(inputs: &ImageInputs) -> LauncherConfig {
    let r = &inputs.recipe.recipe;
    let append = kernel_cmdline(r);
    let defaults = crate::recipe::runtime::launcher_defaults(r);
    LauncherConfig {
        kernel: Some(kernel_path(inputs).into()),
        initrd: inputs.initramfs.map(|_| INITRAMFS_PATH.into()),
        rootfs: Some(ROOTFS_PATH.into()),
        // None: the launcher looks QEMU up in PATH.
        qemu: find_qemu(inputs.runtime, r.arch()).map(PathBuf::from),
        append: Some(append),
        defaults: defaults.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..LauncherConfig::default()
    }
}

/// Where the image keeps the guest kernel.
fn kernel_path(inputs: &ImageInputs) -> &'static str {
    if inputs.pvh {
        PVH_KERNEL_PATH
    } else {
        KERNEL_PATH
    }
}

/// Where the runtime tree has `qemu-system-<arch>` (x86_64, aarch64), as
/// an absolute path.
pub fn find_qemu(runtime: &Tree, arch: crate::recipe::Arch) -> Option<String> {
    ["usr/bin", "bin"]
        .into_iter()
        .map(|dir| TreePath::new(&format!("{dir}/qemu-system-{}", arch.rust())))
        .find(|p| runtime.get(p).map(|n| !n.is_dir()).unwrap_or(false))
        .map(|p| p.absolute())
}

fn tree_err(what: &str) -> impl FnOnce(dinv_fstree::TreeError) -> Error + '_ {
    move |e| fail(StageFailure::from(e).of(what))
}

/// Layer 2: the launcher, the guest's kernel, initramfs and root
/// filesystem (read from their files while the layer is written), the
/// launcher config and the mount points.
pub fn dinv_layer_tree(inputs: &ImageInputs) -> Result<Tree> {
    let mut t = Tree::new();
    // Parents shared with layer 1 keep its metadata so the upper layer does
    // not change them.
    for dir in ["usr", "usr/bin", "usr/share", "etc", "run"] {
        let p = TreePath::new(dir);
        let meta = inputs.runtime.get(&p).filter(|n| n.is_dir()).map(|n| n.meta.clone()).unwrap_or_else(|| Meta::root(0o755));
        t.mkdir_p(&p, meta).map_err(tree_err("dinv layer"))?;
    }
    for dir in ["usr/share/dinv", "etc/dinv", "run/dinv", "docker", "volume"] {
        t.mkdir_p(&TreePath::new(dir), Meta::root(0o755)).map_err(tree_err("dinv layer"))?;
    }
    t.write_file(&tree_path(LAUNCHER_PATH), crate::assets::for_arch(inputs.recipe.recipe.arch()).launcher, Meta::root(0o755)).map_err(tree_err("dinv layer"))?;
    let mut files = vec![(kernel_path(inputs), inputs.vmlinuz), (ROOTFS_PATH, inputs.rootfs)];
    if let Some(i) = inputs.initramfs {
        files.push((INITRAMFS_PATH, i));
    }
    for (dest, src) in files {
        let file = BackingFile::open(src).map_err(Error::io(src))?;
        let len = std::fs::metadata(src).map_err(Error::io(src))?.len();
        let node = Node::new(NodeKind::File(Content::Range { file, offset: 0, len }), Meta::root(0o644));
        t.insert(tree_path(dest), node, Replace::Deny).map_err(tree_err("dinv layer"))?;
    }
    let mut json = serde_json::to_vec_pretty(&launcher_config(inputs)).expect("JSON value serialises");
    json.push(b'\n');
    t.write_file(&tree_path(LAUNCHER_CONFIG_PATH), json, Meta::root(0o644)).map_err(tree_err("dinv layer"))?;
    Ok(t)
}

fn tree_path(abs: &str) -> TreePath {
    TreePath::new(abs.trim_start_matches('/'))
}
