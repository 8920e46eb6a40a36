//! `push`: uploads an OCI layout to a registry with the OCI distribution
//! API (blob existence check, monolithic blob upload, manifest PUT), with
//! basic or bearer authentication from the docker config file.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{Error, Result};

/// `REGISTRY/REPO[:TAG]`, e.g. `127.0.0.1:5000/team/dinv:1.0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

impl Reference {
    /// Parses a reference; the registry part is required (no implicit Docker Hub).
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| Error::Usage(format!("{s:?}: {why} (expected REGISTRY/REPOSITORY[:TAG])"));
        let (registry, rest) = s.split_once('/').ok_or_else(|| bad("no registry"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("the first part must be a registry host"));
        }
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (rest, "latest"),
        };
        let ok = !repository.is_empty()
            && repository.split('/').all(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)));
        if !ok {
            return Err(bad("invalid repository name"));
        }
        if tag.is_empty() || tag.len() > 128 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(bad("invalid tag"));
        }
        Ok(Reference { registry: registry.into(), repository: repository.into(), tag: tag.into() })
    }

    /// Loopback registries speak plain HTTP (as docker assumes); others HTTPS.
    pub fn base_url(&self, plain_http: bool) -> String {
        let host = self.registry.split(':').next().unwrap_or("");
        let local = host == "localhost" || host.starts_with("127.") || host == "[::1]";
        format!("{}://{}", if plain_http || local { "http" } else { "https" }, self.registry)
    }
}

/// Credentials for a registry from `$DOCKER_CONFIG/config.json` (or
/// `~/.docker/config.json`): `auths.<registry>.auth` (base64 `user:pass`).
pub fn credentials(registry: &str) -> Option<(String, String)> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    let v: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).ok()?).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let entry = auths
        .iter()
        .find(|(k, _)| k.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/') == registry)?
        .1;
    let auth = entry.get("auth")?.as_str()?;
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(auth).ok()?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A registry session: remembers the authorization that worked.
struct Session {
    client: Client,
    base: String,
    reference: Reference,
    creds: Option<(String, String)>,
    auth: Option<String>,
}

fn http_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Fetch(crate::fetch::FetchError::Http { url: url.to_string(), message: e.to_string() })
}

/// Parses `Bearer realm="…",service="…",scope="…"`.
fn challenge_params(h: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rest = h.split_once(' ').map(|x| x.1).unwrap_or("");
    let mut s = rest;
    while !s.is_empty() {
        let Some((k, v)) = s.split_once('=') else { break };
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let v = v.trim_start();
        let (val, tail) = if let Some(stripped) = v.strip_prefix('"') {
            let end = stripped.find('"').unwrap_or(stripped.len());
            (stripped[..end].to_string(), &stripped[(end + 1).min(stripped.len())..])
        } else {
            let end = v.find(',').unwrap_or(v.len());
            (v[..end].to_string(), &v[end..])
        };
        out.push((k, val));
        s = tail.trim_start_matches(',').trim_start();
    }
    out
}

impl Session {
    fn send(&mut self, make: &dyn Fn(&Client) -> RequestBuilder, url: &str) -> Result<Response> {
        let req = |auth: &Option<String>| {
            let r = make(&self.client);
            match auth {
                Some(a) => r.header("Authorization", a),
                None => r,
            }
        };
        let resp = req(&self.auth).send().map_err(|e| http_err(url, e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        self.auth = Some(self.authorize(&challenge, url)?);
        req(&self.auth).send().map_err(|e| http_err(url, e))
    }

    fn authorize(&self, challenge: &str, url: &str) -> Result<String> {
        let basic = self
            .creds
            .as_ref()
            .map(|(u, p)| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))));
        if challenge.to_ascii_lowercase().starts_with("basic") {
            return basic.ok_or_else(|| Error::Usage(format!("{url}: the registry wants a login; add it to the docker config file (docker login)")));
        }
        if challenge.to_ascii_lowercase().starts_with("bearer") {
            let params = challenge_params(challenge);
            let get = |k: &str| params.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
            let realm = get("realm").ok_or_else(|| http_err(url, "bearer challenge without realm"))?;
            let mut q: Vec<(String, String)> = Vec::new();
            if let Some(s) = get("service") {
                q.push(("service".into(), s));
            }
            let scope = get("scope").unwrap_or_else(|| format!("repository:{}:pull,push", self.reference.repository));
            q.push(("scope".into(), scope));
            let mut r = self.client.get(&realm).query(&q);
            if let Some(b) = &basic {
                r = r.header("Authorization", b);
            }
            let resp = r.send().map_err(|e| http_err(&realm, e))?;
            if !resp.status().is_success() {
                return Err(http_err(&realm, format!("token request: HTTP {}", resp.status())));
            }
            let body = resp.bytes().map_err(|e| http_err(&realm, e))?;
            let v: Value = serde_json::from_slice(&body).map_err(|e| http_err(&realm, e))?;
            let token = v.get("token").or_else(|| v.get("access_token")).and_then(|t| t.as_str()).ok_or_else(|| http_err(&realm, "no token"))?;
            return Ok(format!("Bearer {token}"));
        }
        Err(http_err(url, format!("unsupported authentication challenge {challenge:?}")))
    }
}

/// A blob to upload: a file of the layout, or bytes made here.
enum Body<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl Session {
    fn url(&self, what: &str) -> String {
        format!("{}/v2/{}/{what}", self.base, self.reference.repository)
    }

    /// Uploads a blob unless the registry has it; true when uploaded.
    fn upload_blob(&mut self, digest: &str, body: Body) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let head = self.send(&|c: &Client| c.head(&url), &url)?;
        if head.status().is_success() {
            return Ok(false);
        }
        let start = self.url("blobs/uploads/");
        let resp = self.send(&|c: &Client| c.post(&start).header("Content-Length", "0"), &start)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(http_err(&start, format!("starting the upload of {digest}: HTTP {}", resp.status())));
        }
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or_else(|| http_err(&start, "no Location"))?;
        let loc = if loc.starts_with("http") { loc.to_string() } else { format!("{}{loc}", self.base) };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put_url = format!("{loc}{sep}digest={digest}");
        let resp = self.send(
            &|c: &Client| {
                let r = c.put(&put_url).header("Content-Type", "application/octet-stream");
                match &body {
                    Body::File(path) => {
                        let f = fs::File::open(path).expect("blob exists");
                        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                        r.header("Content-Length", len).body(reqwest::blocking::Body::sized(f, len))
                    }
                    Body::Bytes(b) => r.header("Content-Length", b.len()).body(b.to_vec()),
                }
            },
            &put_url,
        )?;
        if !resp.status().is_success() {
            return Err(http_err(&put_url, format!("uploading {digest}: HTTP {}", resp.status())));
        }
        Ok(true)
    }

    /// PUTs a manifest under a tag or digest.
    fn put_manifest(&mut self, reference: &str, media_type: &str, body: &[u8]) -> Result<()> {
        let murl = self.url(&format!("manifests/{reference}"));
        let resp = self.send(&|c: &Client| c.put(&murl).header("Content-Type", media_type).body(body.to_vec()), &murl)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().unwrap_or_default();
            return Err(http_err(&murl, format!("manifest PUT: HTTP {status}: {text}")));
        }
        Ok(())
    }

    /// GETs a manifest by tag or digest (None when the registry has none).
    fn get_manifest(&mut self, reference: &str) -> Result<Option<Vec<u8>>> {
        let murl = self.url(&format!("manifests/{reference}"));
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        let resp = self.send(&|c: &Client| c.get(&murl).header("Accept", accept), &murl)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(http_err(&murl, format!("manifest GET: HTTP {}", resp.status())));
        }
        Ok(Some(resp.bytes().map_err(|e| http_err(&murl, e))?.to_vec()))
    }

    /// GETs a blob.
    fn get_blob(&mut self, digest: &str) -> Result<Vec<u8>> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(&|c: &Client| c.get(&url), &url)?;
        if !resp.status().is_success() {
            return Err(http_err(&url, format!("blob GET: HTTP {}", resp.status())));
        }
        let bytes = resp.bytes().map_err(|e| http_err(&url, e))?.to_vec();
        if sha256_digest(&bytes) != digest {
            return Err(Error::integrity(url, format!("its sha256 is not {digest}")));
        }
        Ok(bytes)
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Opens a session with the registry of `reference` (credentials from the docker config).
fn session(reference: &Reference, plain_http: bool) -> Result<Session> {
    let base = reference.base_url(plain_http);
    let client = Client::builder().user_agent(concat!("dinv-build/", env!("CARGO_PKG_VERSION"))).build().map_err(|e| http_err(&base, e))?;
    Ok(Session { client, base, reference: reference.clone(), creds: credentials(&reference.registry), auth: None })
}

/// What `push` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushReport {
    pub reference: String,
    pub manifest_digest: String,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    /// The signature manifest (`sha256-<hex>.sig`), when signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Attached>,
    /// The attestation manifest (`sha256-<hex>.att`), with `--attest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestations: Option<Attached>,
    /// For an image index: each platform's manifest, pushed by digest
    /// before the index, with its attestations under `--attest`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformPush>,
}

/// One platform's manifest of a pushed image index.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlatformPush {
    pub platform: String,
    pub manifest_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestations: Option<Attached>,
}

/// A manifest pushed beside the image under cosign's attachment tag.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attached {
    /// `REGISTRY/REPO:sha256-<hex>.sig` (or `.att`).
    pub reference: String,
    /// The digest of the attachment manifest.
    pub digest: String,
    /// The digest of each layer this push added (payload or DSSE envelope).
    pub layers: Vec<String>,
    /// How many layers the manifest holds (earlier signatures are kept).
    pub total_layers: usize,
}

/// A layer of an attachment: bytes, media type, annotations.
pub struct AttachmentLayer {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub annotations: serde_json::Map<String, Value>,
}

/// What to push beside the image: signed with `key`, the attestations'
/// DSSE envelopes too (made by the caller, who knows the manifest digest).
pub struct Signing<'a> {
    pub key: &'a crate::sign::PrivateKey,
    /// Attached to the pushed manifest (a single-platform image).
    pub attestations: Vec<AttachmentLayer>,
    /// For an image index: attached to each platform's manifest
    /// (platform, its manifest digest, the layers).
    pub platform_attestations: Vec<(String, String, Vec<AttachmentLayer>)>,
}

/// Adds `layers` to the attachment manifest `sha256-<hex>.<suffix>` of
/// `subject`, keeping the layers it has (a layer already there is not
/// added twice: ECDSA signatures here are deterministic, RFC 6979).
fn attach(s: &mut Session, subject: &str, suffix: &str, new: Vec<AttachmentLayer>) -> Result<Attached> {
    let tag = crate::sign::attachment_tag(subject, suffix);
    let mut layers: Vec<Value> = match s.get_manifest(&tag)? {
        Some(b) => serde_json::from_slice::<Value>(&b).ok().and_then(|m| m["layers"].as_array().cloned()).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut added = Vec::new();
    for l in new {
        let digest = sha256_digest(&l.bytes);
        s.upload_blob(&digest, Body::Bytes(&l.bytes))?;
        let desc = serde_json::json!({"mediaType": l.media_type, "size": l.bytes.len(), "digest": digest, "annotations": l.annotations});
        if !layers.contains(&desc) {
            layers.push(desc);
        }
        added.push(digest);
    }
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = serde_json::json!({
        "architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).expect("config serialises");
    let config_digest = sha256_digest(&config);
    s.upload_blob(&config_digest, Body::Bytes(&config))?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": layers,
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest serialises");
    s.put_manifest(&tag, OCI_MANIFEST, &manifest)?;
    let r = &s.reference;
    Ok(Attached { reference: format!("{}/{}:{tag}", r.registry, r.repository), digest: sha256_digest(&manifest), layers: added, total_layers: layers.len() })
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs").join(digest.replace(':', "/"))
}

/// The manifest digest of the image in `layout` (as [`push`] reads it).
pub fn layout_digest(layout: &Path) -> Result<String> {
    let layout = if layout.join("oci/index.json").is_file() { layout.join("oci") } else { layout.to_path_buf() };
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(&fs::read(&index_path).map_err(Error::io(&index_path))?)
        .map_err(|e| Error::Usage(format!("{}: not an OCI index: {e}", index_path.display())))?;
    index["manifests"][0]["digest"].as_str().map(str::to_string).ok_or_else(|| Error::Usage(format!("{}: no manifest", index_path.display())))
}

/// The blobs a manifest names: its config, then its layers.
fn manifest_blobs(manifest: &Value) -> Vec<String> {
    let mut blobs: Vec<String> = vec![manifest["config"]["digest"].as_str().unwrap_or("").to_string()];
    blobs.extend(manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str().map(str::to_string)));
    blobs
}

fn read_layout_json(layout: &Path, digest: &str) -> Result<(Vec<u8>, Value)> {
    let p = blob_path(layout, digest);
    let bytes = fs::read(&p).map_err(Error::io(&p))?;
    let v = serde_json::from_slice(&bytes).map_err(|e| Error::Usage(format!("{}: not JSON: {e}", p.display())))?;
    Ok((bytes, v))
}

/// Uploads the blobs of a manifest, counting (uploaded, already there).
fn upload_manifest_blobs(s: &mut Session, layout: &Path, manifest: &Value, counts: &mut (usize, usize)) -> Result<()> {
    for digest in manifest_blobs(manifest) {
        if s.upload_blob(&digest, Body::File(&blob_path(layout, &digest)))? {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    Ok(())
}

/// The platforms of an image index: (`linux/arm64`, manifest digest).
pub fn index_platforms(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (format!("{}/{}", m["platform"]["os"].as_str().unwrap_or(""), m["platform"]["architecture"].as_str().unwrap_or("")), m["digest"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// Pushes the image in the OCI layout `layout` (an `oci/` directory, or a
/// build output directory containing one) to `reference`. An image index
/// (a multi-platform build) is pushed whole: each platform's blobs and
/// manifest (by digest), then the index under the tag.
pub fn push(layout: &Path, reference: &Reference, plain_http: bool, signing: Option<Signing>) -> Result<PushReport> {
    let layout = if layout.join("oci/index.json").is_file() { layout.join("oci") } else { layout.to_path_buf() };
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(&fs::read(&index_path).map_err(Error::io(&index_path))?)
        .map_err(|e| Error::Usage(format!("{}: not an OCI index: {e}", index_path.display())))?;
    let desc = index["manifests"]
        .as_array()
        .and_then(|m| m.first())
        .ok_or_else(|| Error::Usage(format!("{}: no manifest", index_path.display())))?;
    let manifest_digest = desc["digest"].as_str().unwrap_or("").to_string();
    let media_type = desc["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
    let (manifest_bytes, manifest) = read_layout_json(&layout, &manifest_digest)?;

    let mut s = session(reference, plain_http)?;
    let mut counts = (0, 0);
    let mut platforms = Vec::new();
    if media_type == dinv_image::MEDIA_TYPE_INDEX {
        for (platform, digest) in index_platforms(&manifest) {
            let (bytes, m) = read_layout_json(&layout, &digest)?;
            upload_manifest_blobs(&mut s, &layout, &m, &mut counts)?;
            s.put_manifest(&digest, OCI_MANIFEST, &bytes)?;
            platforms.push(PlatformPush { platform, manifest_digest: digest, attestations: None });
        }
    } else {
        upload_manifest_blobs(&mut s, &layout, &manifest, &mut counts)?;
    }
    s.put_manifest(&reference.tag, &media_type, &manifest_bytes)?;
    let pushed = format!("{}/{}:{}", reference.registry, reference.repository, reference.tag);
    let (mut signature, mut attestations) = (None, None);
    if let Some(signing) = signing {
        // The payload names the reference as pushed, tag included: a
        // `matchRepoDigestOrExact` policy accepts it for that tag and for
        // the digest. An index is signed as itself.
        let payload = crate::sign::payload(&pushed, &manifest_digest);
        let sig = base64::engine::general_purpose::STANDARD.encode(signing.key.sign(&payload));
        let mut annotations = serde_json::Map::new();
        annotations.insert(crate::sign::SIGNATURE_ANNOTATION.into(), Value::String(sig));
        let layer = AttachmentLayer { bytes: payload, media_type: crate::sign::SIMPLE_SIGNING_MEDIA_TYPE.into(), annotations };
        let a = attach(&mut s, &manifest_digest, "sig", vec![layer])?;
        tracing::info!(signature = %a.reference, digest = %a.digest, "signed");
        signature = Some(a);
        if !signing.attestations.is_empty() {
            let a = attach(&mut s, &manifest_digest, "att", signing.attestations)?;
            tracing::info!(attestations = %a.reference, digest = %a.digest, "attested");
            attestations = Some(a);
        }
        for (platform, digest, layers) in signing.platform_attestations {
            let a = attach(&mut s, &digest, "att", layers)?;
            tracing::info!(platform = %platform, attestations = %a.reference, digest = %a.digest, "attested");
            if let Some(p) = platforms.iter_mut().find(|p| p.manifest_digest == digest) {
                p.attestations = Some(a);
            }
        }
    }
    Ok(PushReport { reference: pushed, manifest_digest, blobs_uploaded: counts.0, blobs_present: counts.1, signature, attestations, platforms })
}

/// The manifest digest `reference` names now, and the verified payloads
/// of its signatures under `key` (each: the docker-reference it names).
/// A signature by another key, or over another digest, is not counted.
pub fn verify_signatures(reference: &Reference, plain_http: bool, key: &crate::sign::PublicKey) -> Result<(String, Vec<String>)> {
    let mut s = session(reference, plain_http)?;
    let manifest = s.get_manifest(&reference.tag)?.ok_or_else(|| Error::Usage(format!("{}: no such tag", reference.tag)))?;
    let digest = sha256_digest(&manifest);
    let mut good = Vec::new();
    let Some(sigs) = s.get_manifest(&crate::sign::attachment_tag(&digest, "sig"))? else { return Ok((digest, good)) };
    let sigs: Value = serde_json::from_slice(&sigs).map_err(|e| Error::Usage(format!("signature manifest: {e}")))?;
    for l in sigs["layers"].as_array().into_iter().flatten() {
        let (Some(d), Some(sig)) = (l["digest"].as_str(), l["annotations"][crate::sign::SIGNATURE_ANNOTATION].as_str()) else { continue };
        let payload = s.get_blob(d)?;
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else { continue };
        if !key.verify(&payload, &sig) {
            continue;
        }
        if let Ok((named, signed)) = crate::sign::parse_payload(&payload) {
            if signed == digest {
                good.push(named);
            }
        }
    }
    Ok((digest, good))
}

/// The attestation envelopes (DSSE JSON) stored for `digest` in the
/// repository of `reference`, each as fetched (unverified).
pub fn fetch_attestations(reference: &Reference, plain_http: bool, digest: &str) -> Result<Vec<Vec<u8>>> {
    let mut s = session(reference, plain_http)?;
    let Some(m) = s.get_manifest(&crate::sign::attachment_tag(digest, "att"))? else { return Ok(Vec::new()) };
    let m: Value = serde_json::from_slice(&m).map_err(|e| Error::Usage(format!("attestation manifest: {e}")))?;
    let mut out = Vec::new();
    for l in m["layers"].as_array().into_iter().flatten() {
        if let Some(d) = l["digest"].as_str() {
            out.push(s.get_blob(d)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("127.0.0.1:5000/team/dinv:1.0").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_str()), ("127.0.0.1:5000", "team/dinv", "1.0"));
        assert_eq!(Reference::parse("registry.example.invalid/dinv").unwrap().tag, "latest");
        assert!(Reference::parse("dinv:latest").is_err());
        assert!(Reference::parse("127.0.0.1:5000/Upper:x").is_err());
        assert_eq!(r.base_url(false), "http://127.0.0.1:5000");
        assert_eq!(Reference::parse("registry.example.invalid/x").unwrap().base_url(false), "https://registry.example.invalid");
    }

    #[test]
    fn bearer_challenge() {
        let p = challenge_params(r#"Bearer realm="https://auth.example.invalid/token",service="registry.example.invalid",scope="repository:a/b:pull,push""#);
        assert_eq!(p[0], ("realm".into(), "https://auth.example.invalid/token".into()));
        assert_eq!(p[1].1, "registry.example.invalid");
        assert_eq!(p[2].1, "repository:a/b:pull,push");
    }
}
