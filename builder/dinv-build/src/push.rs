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

/// What `push` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushReport {
    pub reference: String,
    pub manifest_digest: String,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs").join(digest.replace(':', "/"))
}

/// Pushes the image in the OCI layout `layout` (an `oci/` directory, or a
/// build output directory containing one) to `reference`.
pub fn push(layout: &Path, reference: &Reference, plain_http: bool) -> Result<PushReport> {
    let layout = if layout.join("oci/index.json").is_file() { layout.join("oci") } else { layout.to_path_buf() };
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(&fs::read(&index_path).map_err(Error::io(&index_path))?)
        .map_err(|e| Error::Usage(format!("{}: not an OCI index: {e}", index_path.display())))?;
    let desc = index["manifests"]
        .as_array()
        .and_then(|m| m.first())
        .ok_or_else(|| Error::Usage(format!("{}: no manifest", index_path.display())))?;
    let manifest_digest = desc["digest"].as_str().unwrap_or("").to_string();
    let media_type = desc["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_string();
    let manifest_bytes = fs::read(blob_path(&layout, &manifest_digest)).map_err(Error::io(blob_path(&layout, &manifest_digest)))?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes).map_err(|e| Error::Usage(format!("manifest {manifest_digest}: {e}")))?;
    let mut blobs: Vec<String> = vec![manifest["config"]["digest"].as_str().unwrap_or("").to_string()];
    blobs.extend(manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str().map(str::to_string)));

    let base = reference.base_url(plain_http);
    let client = Client::builder().user_agent(concat!("dinv-build/", env!("CARGO_PKG_VERSION"))).build().map_err(|e| http_err(&base, e))?;
    let mut s = Session { client, base: base.clone(), reference: reference.clone(), creds: credentials(&reference.registry), auth: None };
    let repo = reference.repository.clone();
    let (mut uploaded, mut present) = (0, 0);
    for digest in &blobs {
        let url = format!("{}/v2/{repo}/blobs/{digest}", s.base);
        let head = s.send(&|c: &Client| c.head(&url), &url)?;
        if head.status().is_success() {
            present += 1;
            continue;
        }
        let start = format!("{}/v2/{repo}/blobs/uploads/", s.base);
        let resp = s.send(&|c: &Client| c.post(&start).header("Content-Length", "0"), &start)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(http_err(&start, format!("starting the upload of {digest}: HTTP {}", resp.status())));
        }
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or_else(|| http_err(&start, "no Location"))?;
        let loc = if loc.starts_with("http") { loc.to_string() } else { format!("{}{loc}", s.base) };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put_url = format!("{loc}{sep}digest={digest}");
        let path = blob_path(&layout, digest);
        let resp = s.send(
            &|c: &Client| {
                let f = fs::File::open(&path).expect("blob exists");
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                c.put(&put_url).header("Content-Type", "application/octet-stream").header("Content-Length", len).body(reqwest::blocking::Body::sized(f, len))
            },
            &put_url,
        )?;
        if !resp.status().is_success() {
            return Err(http_err(&put_url, format!("uploading {digest}: HTTP {}", resp.status())));
        }
        uploaded += 1;
    }
    let murl = format!("{}/v2/{repo}/manifests/{}", s.base, reference.tag);
    let body = manifest_bytes.clone();
    let resp = s.send(&|c: &Client| c.put(&murl).header("Content-Type", media_type.as_str()).body(body.clone()), &murl)?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        return Err(http_err(&murl, format!("manifest PUT: HTTP {status}: {text}")));
    }
    Ok(PushReport {
        reference: format!("{}/{}:{}", reference.registry, reference.repository, reference.tag),
        manifest_digest,
        blobs_uploaded: uploaded,
        blobs_present: present,
    })
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
