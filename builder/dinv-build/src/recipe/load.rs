//! Reading recipe files: TOML with source locations, `extends` merging,
//! and paths made absolute relative to the file that names them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Value;

use super::error::{Location, RecipeError};
use super::loaded::{locate_in, LoadedRecipe};
use super::model::{Arch, Recipe};
use super::vfs;
pub use super::vfs::normalize;

/// Keys whose string values (or string array elements) are file paths,
/// resolved relative to the file that declares them. `*` matches any table
/// key or array index.
const PATH_KEYS: &[&str] = &[
    "sources.*.keys.*",
    "sources.*.keyrings.*",
    "sources.*.mirror",
    "kernel.fragments.*",
    "overlays.*.path",
    "files.*.source",
    "docker.ca_certificates.*.file",
];

fn is_path_key(segments: &[String]) -> bool {
    // `[platform."linux/arm64"]` names paths as the recipe does.
    if segments.len() > 2 && segments[0] == "platform" {
        return is_path_key(&segments[2..]);
    }
    // A list edit (`fragments = { add = [...] }`) names paths as the list does.
    let n = segments.len();
    if n >= 2 && ["add", "remove", "replace"].contains(&segments[n - 2].as_str()) {
        let plain: Vec<String> = segments[..n - 2].iter().chain(&segments[n - 1..]).cloned().collect();
        if is_path_key(&plain) {
            return true;
        }
    }
    PATH_KEYS.iter().any(|pat| {
        let p: Vec<&str> = pat.split('.').collect();
        p.len() == segments.len() && p.iter().zip(segments).all(|(a, b)| *a == "*" || a == b)
    })
}

fn join_key(prefix: &str, seg: &str, is_index: bool) -> String {
    if is_index {
        format!("{prefix}[{seg}]")
    } else if prefix.is_empty() {
        seg.to_string()
    } else {
        format!("{prefix}.{seg}")
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Records the line of every key and array element of a parsed file.
fn collect_lines(text: &str, item: &toml_edit::Item, prefix: &str, file: &Path, out: &mut BTreeMap<String, Location>) {
    let loc = |span: Option<std::ops::Range<usize>>| Location { file: file.to_path_buf(), line: span.map(|s| line_of(text, s.start)).unwrap_or(1) };
    match item {
        toml_edit::Item::Table(t) => {
            for (k, v) in t.iter() {
                let key = join_key(prefix, k, false);
                let span = t.key(k).and_then(|kk| kk.span());
                out.insert(key.clone(), loc(span));
                collect_lines(text, v, &key, file, out);
            }
        }
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let key = join_key(prefix, &i.to_string(), true);
                out.insert(key.clone(), loc(t.span()));
                for (k, v) in t.iter() {
                    let kk = join_key(&key, k, false);
                    out.insert(kk.clone(), loc(t.key(k).and_then(|x| x.span())));
                    collect_lines(text, v, &kk, file, out);
                }
            }
        }
        toml_edit::Item::Value(v) => collect_value_lines(text, v, prefix, file, out),
        toml_edit::Item::None => {}
    }
}

fn collect_value_lines(text: &str, v: &toml_edit::Value, prefix: &str, file: &Path, out: &mut BTreeMap<String, Location>) {
    let loc = |span: Option<std::ops::Range<usize>>| Location { file: file.to_path_buf(), line: span.map(|s| line_of(text, s.start)).unwrap_or(1) };
    match v {
        toml_edit::Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let key = join_key(prefix, &i.to_string(), true);
                out.insert(key.clone(), loc(e.span()));
                collect_value_lines(text, e, &key, file, out);
            }
        }
        toml_edit::Value::InlineTable(t) => {
            for (k, e) in t.iter() {
                let key = join_key(prefix, k, false);
                out.insert(key.clone(), loc(t.key(k).and_then(|x| x.span()).or(e.span())));
                collect_value_lines(text, e, &key, file, out);
            }
        }
        _ => {}
    }
}

/// One parsed file before merging.
struct Parsed {
    table: toml::Table,
    lines: BTreeMap<String, Location>,
}

fn parse_file(path: &Path) -> Result<Parsed, RecipeError> {
    let text = vfs::read_to_string(path).map_err(|e| RecipeError::file(None, format!("cannot read recipe {}: {e}", path.display())))?;
    let invalid = |span: Option<std::ops::Range<usize>>, message: &str| {
        let line = span.map(|s| line_of(&text, s.start)).unwrap_or(1);
        RecipeError::file(Some(Location { file: path.to_path_buf(), line }), format!("invalid TOML: {}", message.trim()))
    };
    let doc: toml_edit::ImDocument<String> = toml_edit::ImDocument::parse(text.clone()).map_err(|e| invalid(e.span(), e.message()))?;
    let mut lines = BTreeMap::new();
    collect_lines(&text, doc.as_item(), "", path, &mut lines);
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.span(), e.message()))?;
    absolutize(&mut table, &mut Vec::new(), &vfs::parent(path));
    Ok(Parsed { table, lines })
}

fn is_url(s: &str) -> bool {
    s.contains("://")
}

fn absolutize_value(v: &mut Value, segs: &mut Vec<String>, dir: &Path) {
    match v {
        Value::String(s) if is_path_key(segs) && !is_url(s) && !s.is_empty() => {
            let p = Path::new(s.as_str());
            if p.is_relative() || vfs::is_embedded(dir) {
                *s = vfs::join(dir, s).to_string_lossy().into_owned();
            }
        }
        Value::Table(t) => absolutize(t, segs, dir),
        Value::Array(a) => {
            for (i, e) in a.iter_mut().enumerate() {
                segs.push(i.to_string());
                absolutize_value(e, segs, dir);
                segs.pop();
            }
        }
        _ => {}
    }
}

fn absolutize(t: &mut toml::Table, segs: &mut Vec<String>, dir: &Path) {
    for (k, v) in t.iter_mut() {
        segs.push(k.clone());
        absolutize_value(v, segs, dir);
        segs.pop();
    }
}

/// The recipe's top-level sections that are tables, never lists (a child's
/// `[guest]` with only `remove = [...]` is the section, not a list edit).
const SECTIONS: &[&str] = &["image", "sources", "guest", "runtime", "kernel", "docker", "vm", "rootfs", "build", "platform"];

/// Is this a list-edit table (`{ add = [...], remove = [...], replace = [...] }`)?
fn list_edit(v: &Value) -> Option<&toml::Table> {
    let t = v.as_table()?;
    (!t.is_empty() && t.keys().all(|k| matches!(k.as_str(), "add" | "remove" | "replace"))).then_some(t)
}

fn element_matches(elem: &Value, pattern: &Value) -> bool {
    if elem == pattern {
        return true;
    }
    // A string removes a table element whose `name` or `path` equals it.
    if let (Value::Table(t), Value::String(s)) = (elem, pattern) {
        return ["name", "path", "file"].iter().any(|k| t.get(*k).and_then(|v| v.as_str()) == Some(s));
    }
    false
}

/// Merges `child` over `parent`, recording origins. Tables merge by key,
/// arrays append, list-edit tables add/remove/replace, scalars override.
fn merge(
    parent: &mut toml::Table,
    child: toml::Table,
    prefix: &str,
    child_lines: &BTreeMap<String, Location>,
    origins: &mut BTreeMap<String, Location>,
) -> Result<(), RecipeError> {
    for (k, v) in child {
        let key = join_key(prefix, &k, false);
        let here = child_lines.get(&key).cloned();
        match (parent.get_mut(&k), v) {
            // A table over a table merges, even when its keys look like a
            // list edit (`[guest]` holding only `remove = [...]`).
            (Some(Value::Table(pt)), Value::Table(ct)) => {
                if let Some(l) = here {
                    origins.entry(key.clone()).or_insert(l);
                }
                merge(pt, ct, &key, child_lines, origins)?;
            }
            (Some(Value::Array(pa)), v) => {
                let base = pa.len();
                match v {
                    Value::Array(ca) => {
                        for (i, e) in ca.into_iter().enumerate() {
                            let ek = join_key(&key, &(base + i).to_string(), true);
                            if let Some(l) = child_lines.get(&join_key(&key, &i.to_string(), true)) {
                                origins.insert(ek.clone(), l.clone());
                            }
                            copy_origins(child_lines, &join_key(&key, &i.to_string(), true), &ek, origins);
                            pa.push(e);
                        }
                    }
                    other => {
                        let Some(edit) = list_edit(&other) else {
                            return Err(RecipeError {
                                location: here,
                                key,
                                message: "expected a list, or a table with `add`, `remove` or `replace`".into(),
                            });
                        };
                        for k in ["replace", "remove", "add"] {
                            if edit.get(k).is_some_and(|v| !v.is_array()) {
                                return Err(RecipeError { location: here, key, message: format!("`{k}` takes a list") });
                            }
                        }
                        // Each element keeps its own origin through the edit:
                        // inherited ones their parent's line, new ones the child's.
                        let mut elems: Vec<(Value, Vec<(String, Location)>)> =
                            pa.drain(..).enumerate().map(|(i, v)| (v, element_origins(origins, &key, i))).collect();
                        if let Some(Value::Array(r)) = edit.get("replace") {
                            elems = edit_elements(r, child_lines, &format!("{key}.replace"));
                        }
                        if let Some(Value::Array(rm)) = edit.get("remove") {
                            for pat in rm {
                                let before = elems.len();
                                elems.retain(|(e, _)| !element_matches(e, pat));
                                if elems.len() == before {
                                    return Err(RecipeError {
                                        location: here.clone(),
                                        key: format!("{key}.remove"),
                                        message: format!("{pat} is not in the inherited list, so it cannot be removed"),
                                    });
                                }
                            }
                        }
                        if let Some(Value::Array(a)) = edit.get("add") {
                            elems.extend(edit_elements(a, child_lines, &format!("{key}.add")));
                        }
                        forget_elements(origins, &key);
                        for (i, (v, os)) in elems.into_iter().enumerate() {
                            for (suffix, l) in os {
                                origins.insert(format!("{key}[{i}]{suffix}"), l);
                            }
                            pa.push(v);
                        }
                        if let Some(l) = here {
                            origins.insert(key.clone(), l);
                        }
                    }
                }
            }
            (_, v) => {
                forget_elements(origins, &key);
                let edit = if prefix.is_empty() && SECTIONS.contains(&k.as_str()) { None } else { list_edit(&v) };
                let v = match edit {
                    // An edit with nothing to edit: `add`/`replace` give the list.
                    Some(edit) => {
                        let mut out = Vec::new();
                        for k in ["replace", "add"] {
                            if let Some(Value::Array(a)) = edit.get(k) {
                                out.extend(edit_elements(a, child_lines, &format!("{key}.{k}")));
                            }
                        }
                        if let Some(l) = here {
                            origins.insert(key.clone(), l);
                        }
                        let mut list = Vec::new();
                        for (i, (v, os)) in out.into_iter().enumerate() {
                            for (suffix, l) in os {
                                origins.insert(format!("{key}[{i}]{suffix}"), l);
                            }
                            list.push(v);
                        }
                        Value::Array(list)
                    }
                    None => {
                        copy_origins(child_lines, &key, &key, origins);
                        v
                    }
                };
                parent.insert(k, v);
            }
        }
    }
    Ok(())
}

/// The origins of element `i` of list `key` and of everything inside it,
/// keyed by what follows `key[i]`.
fn element_origins(origins: &BTreeMap<String, Location>, key: &str, i: usize) -> Vec<(String, Location)> {
    let base = format!("{key}[{i}]");
    origins
        .range(base.clone()..)
        .take_while(|(k, _)| k.starts_with(&base))
        .filter(|(k, _)| {
            let rest = &k[base.len()..];
            rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
        })
        .map(|(k, l)| (k[base.len()..].to_string(), l.clone()))
        .collect()
}

/// The elements of a child's `add`/`replace` list with their own origins.
fn edit_elements(list: &[Value], child_lines: &BTreeMap<String, Location>, key: &str) -> Vec<(Value, Vec<(String, Location)>)> {
    list.iter().enumerate().map(|(j, v)| (v.clone(), element_origins(child_lines, key, j))).collect()
}

fn forget_elements(origins: &mut BTreeMap<String, Location>, key: &str) {
    let prefix_dot = format!("{key}.");
    let prefix_idx = format!("{key}[");
    origins.retain(|k, _| !(k.starts_with(&prefix_dot) || k.starts_with(&prefix_idx)));
}

fn copy_origins(lines: &BTreeMap<String, Location>, from: &str, to: &str, origins: &mut BTreeMap<String, Location>) {
    for (k, l) in lines.range(from.to_string()..) {
        if k == from || k.starts_with(&format!("{from}.")) || k.starts_with(&format!("{from}[")) {
            origins.insert(format!("{to}{}", &k[from.len()..]), l.clone());
        } else if !k.starts_with(from) {
            break;
        }
    }
}

fn load_merged(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<(toml::Table, BTreeMap<String, Location>), RecipeError> {
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(i) = stack.iter().position(|p| *p == canon) {
        let cycle: Vec<String> = stack[i..].iter().chain([&canon]).map(|p| p.display().to_string()).collect();
        return Err(RecipeError { location: None, key: "extends".into(), message: format!("cycle: {}", cycle.join(" → ")) });
    }
    stack.push(canon);
    let parsed = parse_file(path)?;
    let mut child = parsed.table;
    let parents: Vec<(String, Option<Location>)> = match child.remove("extends") {
        None => vec![],
        Some(Value::String(s)) => vec![(s, parsed.lines.get("extends").cloned())],
        Some(Value::Array(a)) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok((s, parsed.lines.get(&format!("extends[{i}]")).cloned())),
                _ => Err(RecipeError {
                    location: parsed.lines.get("extends").cloned(),
                    key: "extends".into(),
                    message: "must be a file name or a list of file names".into(),
                }),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RecipeError {
                location: parsed.lines.get("extends").cloned(),
                key: "extends".into(),
                message: "must be a file name or a list of file names".into(),
            })
        }
    };
    let dir = vfs::parent(path);
    let mut base = toml::Table::new();
    let mut origins = BTreeMap::new();
    for (p, loc) in &parents {
        let ppath = vfs::join(&dir, p);
        if !vfs::is_file(&ppath) {
            let message = if vfs::is_embedded(&ppath) {
                format!("{} is not a recipe embedded in dinv-build (those are {})", ppath.display(), vfs::recipe_names())
            } else {
                format!("parent recipe {} does not exist", ppath.display())
            };
            return Err(RecipeError { location: loc.clone(), key: "extends".into(), message });
        }
        // Caught here rather than on entry, so the error points at the
        // `extends` line that closes the cycle.
        let pcanon = ppath.canonicalize().unwrap_or_else(|_| ppath.clone());
        if let Some(i) = stack.iter().position(|s| *s == pcanon) {
            let cycle: Vec<String> = stack[i..].iter().chain([&pcanon]).map(|p| p.display().to_string()).collect();
            return Err(RecipeError { location: loc.clone(), key: "extends".into(), message: format!("cycle: {}", cycle.join(" → ")) });
        }
        let (t, o) = load_merged(&ppath, stack, files)?;
        merge(&mut base, t, "", &o, &mut origins)?;
    }
    merge(&mut base, child, "", &parsed.lines, &mut origins)?;
    files.push(path.to_path_buf());
    stack.pop();
    Ok((base, origins))
}

/// Loads a recipe and everything it extends. A recipe with
/// `image.platforms` is also loaded once per platform
/// ([`LoadedRecipe::variants`]), each with its `[platform."…"]` table
/// merged over it and every source's `arch` set to the platform's.
pub fn load(path: &Path) -> Result<LoadedRecipe, RecipeError> {
    let mut files = Vec::new();
    let (merged, origins) = load_merged(path, &mut Vec::new(), &mut files)?;
    let missing: Vec<String> = REQUIRED.iter().filter(|(k, _)| lookup(&merged, k).is_none()).map(|(k, section)| format!("`{k}` ({section})")).collect();
    if !missing.is_empty() {
        let location = Some(Location { file: path.to_path_buf(), line: 1 });
        let keys = if missing.len() == 1 { "a required key" } else { "required keys" };
        return Err(RecipeError::file(location, format!("missing {keys}: {} (none of the files in its extends chain sets it)", missing.join(", "))));
    }
    let recipe = typed(&merged, &origins, path)?;
    let mut loaded = LoadedRecipe { recipe, path: path.to_path_buf(), files, origins, merged, inputs: BTreeMap::new(), platform: None, variants: Vec::new() };
    if loaded.recipe.image.platforms.is_empty() {
        if let Some(p) = loaded.recipe.platform.keys().next() {
            return Err(loaded.error(&format!("platform.{p}"), format!("[platform.{p:?}] applies to a platform of `image.platforms`, and the recipe lists none")));
        }
        super::validate::validate(&loaded)?;
        loaded.inputs = super::inputs::input_hashes(&loaded)?;
    } else {
        let mut variants = platform_variants(&loaded)?;
        // One platform: that platform's recipe, built as any other.
        if variants.len() == 1 {
            return Ok(variants.pop().expect("one"));
        }
        loaded.variants = variants;
        // The recipe's inputs are every platform's, and each platform's
        // build records them all (one lock, one inputs digest).
        loaded.inputs = loaded.variants.iter().flat_map(|v| v.inputs.clone()).collect();
        for v in &mut loaded.variants {
            v.inputs = loaded.inputs.clone();
        }
    }
    Ok(loaded)
}

/// The typed recipe of a merged document; a type error points at its key.
fn typed(merged: &toml::Table, origins: &BTreeMap<String, Location>, path: &Path) -> Result<Recipe, RecipeError> {
    serde_path_to_error::deserialize(Value::Table(merged.clone())).map_err(|e| {
        let mut key = e.path().to_string();
        if key == "." {
            key.clear();
        }
        let (key, message) = explain_type_error(&key, &e.into_inner().to_string());
        let location = locate_in(origins, &key).or_else(|| Some(Location { file: path.to_path_buf(), line: 1 }));
        RecipeError { location, key, message }
    })
}

/// One loaded recipe per entry of `image.platforms`, each validated.
fn platform_variants(l: &LoadedRecipe) -> Result<Vec<LoadedRecipe>, RecipeError> {
    let platforms = &l.recipe.image.platforms;
    let mut archs = Vec::new();
    for (i, p) in platforms.iter().enumerate() {
        let key = format!("image.platforms[{i}]");
        let arch = Arch::of_platform(p).ok_or_else(|| l.error(&key, format!("{p:?}: the platforms are \"linux/amd64\" and \"linux/arm64\"")))?;
        if archs.contains(&arch) {
            return Err(l.error(&key, format!("{p:?} is listed twice")));
        }
        archs.push(arch);
    }
    let mut base = l.merged.clone();
    let overlays = base.remove("platform").and_then(|v| v.as_table().cloned()).unwrap_or_default();
    if let Some(p) = overlays.keys().find(|p| !archs.iter().any(|a| Arch::of_platform(p) == Some(*a))) {
        return Err(l.error(&format!("platform.{p}"), format!("{p:?} is not one of `image.platforms` ({})", platforms.join(", "))));
    }
    let mut base_origins = l.origins.clone();
    base_origins.retain(|k, _| !(k == "platform" || k.starts_with("platform.")));
    let mut out = Vec::new();
    for arch in archs {
        let platform = arch.platform();
        let (mut merged, mut origins) = (base.clone(), base_origins.clone());
        if let Some((name, Value::Table(overlay))) = overlays.iter().find(|(p, _)| Arch::of_platform(p) == Some(arch)) {
            let prefix = format!("platform.{name}.");
            let lines: BTreeMap<String, Location> = l.origins.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|r| (r.to_string(), v.clone()))).collect();
            merge(&mut merged, overlay.clone(), "", &lines, &mut origins)?;
        }
        // Every source's arch is the platform's; one written out must agree.
        if let Some(Value::Table(sources)) = merged.get_mut("sources") {
            for (name, src) in sources.iter_mut() {
                let Some(src) = src.as_table_mut() else { continue };
                let want = if src.get("type").and_then(Value::as_str) == Some("apk") { arch.rust() } else { arch.oci() };
                match src.get("arch").and_then(Value::as_str) {
                    Some(a) if Arch::of_source_arch(a) != Some(arch) => {
                        let key = format!("sources.{name}.arch");
                        let message = format!("{a:?} contradicts {platform} of `image.platforms`: leave `arch` out, each platform sets it ({want:?} for {platform}), or set it in [platform.{platform:?}]");
                        return Err(RecipeError { location: locate_in(&origins, &key), key, message });
                    }
                    Some(_) => {}
                    None => {
                        src.insert("arch".into(), Value::String(want.into()));
                    }
                }
            }
        }
        // The machine, unless set, is the platform's own (microvm, virt).
        if let Some(vm) = merged.entry("vm").or_insert_with(|| Value::Table(toml::Table::new())).as_table_mut() {
            vm.entry("machine").or_insert_with(|| Value::String(dinv_contract::settings::Machine::default_for(arch.rust()).as_str().into()));
        }
        let recipe = typed(&merged, &origins, &l.path)?;
        let mut v = LoadedRecipe { recipe, path: l.path.clone(), files: l.files.clone(), origins, merged, inputs: BTreeMap::new(), platform: Some(arch), variants: Vec::new() };
        super::validate::validate(&v).map_err(|e| RecipeError { message: format!("{} (for platform {platform}; what differs per platform goes in [platform.{platform:?}])", e.message), ..e })?;
        v.inputs = super::inputs::input_hashes(&v)?;
        out.push(v);
    }
    Ok(out)
}

/// Keys every recipe needs (with where they go), checked all at once
/// before the typed model reads the recipe, which would stop at the first.
const REQUIRED: &[(&str, &str)] = &[("image.name", "in [image]"), ("sources", "at least one [sources.NAME] table"), ("guest.source", "in [guest]"), ("guest.packages", "in [guest]")];

/// The value at a dotted key of a table.
fn lookup<'a>(t: &'a toml::Table, dotted: &str) -> Option<&'a Value> {
    let mut parts = dotted.split('.');
    let mut v = t.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v)
}

/// serde's wording of a type error in ours: `expected a whole number,
/// found the string "x"`, on one line, without serde's trailing key.
fn reword(message: &str) -> String {
    let one_line = message.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    let trimmed = match one_line.rfind(" in `") {
        Some(i) if one_line.ends_with('`') => one_line[..i].to_string(),
        _ => one_line,
    };
    let Some(rest) = trimmed.strip_prefix("invalid type: ") else { return trimmed };
    let Some((found, expected)) = rest.split_once(", expected ") else { return trimmed };
    let kind = |t: &str| -> String {
        match t.trim() {
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" => "a whole number".into(),
            "a sequence" => "a list".into(),
            "a map" => "a table".into(),
            "a boolean" | "bool" => "true or false".into(),
            t if t.starts_with("struct ") => "a table".into(),
            t => t.to_string(),
        }
    };
    let found = match found.split_once(' ') {
        Some(("string", v)) => format!("the string {v}"),
        Some(("integer", v)) => format!("the number {}", v.trim_matches('`')),
        Some(("floating", v)) => format!("the number {}", v.trim_start_matches("point ").trim_matches('`')),
        Some(("boolean", v)) => format!("{}", v.trim_matches('`')),
        _ if found == "sequence" => "a list".into(),
        _ if found == "map" => "a table".into(),
        _ => found.to_string(),
    };
    format!("expected {}, found {found}", kind(expected))
}

/// The key a type error is about and its message: an unknown field is
/// reported at its own key (whether or not the deserializer's path already
/// ends with it), with the nearest known name suggested.
fn explain_type_error(path: &str, message: &str) -> (String, String) {
    let unknown = ["unknown field `", "unknown variant `"].iter().find_map(|p| message.strip_prefix(p).map(|rest| (*p, rest)));
    let Some((prefix, rest)) = unknown else { return (path.to_string(), reword(message)) };
    let Some((name, tail)) = rest.split_once('`') else { return (path.to_string(), message.to_string()) };
    let key = if prefix.contains("field") && !(path == name || path.ends_with(&format!(".{name}"))) { join_key(path, name, false) } else { path.to_string() };
    let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    let message = match closest(name, &expected) {
        Some(best) => format!("{prefix}{name}`, did you mean `{best}`?"),
        None => message.to_string(),
    };
    (key, message)
}

/// The candidate nearest to `name` by edit distance, when it is close.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let best = candidates.iter().map(|c| (crate::suggest::edit_distance(name, c), *c)).min()?;
    (best.0 > 0 && best.0 <= (name.chars().count() / 3).max(1)).then_some(best.1)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_in_our_words() {
        assert_eq!(reword("invalid type: string \"2\", expected u32\nin `vm.cpus`\n"), "expected a whole number, found the string \"2\"");
        assert_eq!(reword("invalid type: integer `512`, expected a string in `vm.memory`"), "expected a string, found the number 512");
        assert_eq!(reword("invalid type: map, expected a sequence"), "expected a list, found a table");
        assert_eq!(reword("something else"), "something else");
    }

    #[test]
    fn unknown_fields_are_named_once_with_a_suggestion() {
        let m = "unknown field `memroy`, expected one of `cpus`, `memory`, `docker_disk_size`, `machine`, `stop_timeout`";
        assert_eq!(explain_type_error("vm.memroy", m), ("vm.memroy".to_string(), "unknown field `memroy`, did you mean `memory`?".to_string()));
        assert_eq!(explain_type_error("vm", m).0, "vm.memroy");
        let far = "unknown field `colour`, expected `cpus` or `memory`";
        assert_eq!(explain_type_error("vm", far), ("vm.colour".to_string(), far.to_string()));
        let v = "unknown variant `openrcc`, expected `openrc` or `dinv`";
        assert_eq!(explain_type_error("guest.init", v), ("guest.init".to_string(), "unknown variant `openrcc`, did you mean `openrc`?".to_string()));
        assert_eq!(crate::suggest::edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn list_edits_of_path_lists_are_paths_too() {
        let segs = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert!(is_path_key(&segs("kernel.fragments.0")));
        for op in ["add", "remove", "replace"] {
            assert!(is_path_key(&segs(&format!("kernel.fragments.{op}.1"))), "{op}");
        }
        assert!(is_path_key(&segs("sources.debian.keyrings.add.0")));
        assert!(!is_path_key(&segs("guest.packages.add.0")) && !is_path_key(&segs("kernel.add.0")));
    }

    #[test]
    fn normalize_keeps_leading_parents() {
        assert_eq!(normalize(Path::new("../../recipes/../kernel-configs/a")), PathBuf::from("../../kernel-configs/a"));
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
    }

    #[test]
    fn list_edits_keep_each_elements_origin() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("base.toml");
        std::fs::write(&parent, "[guest]\npackages = [\n    \"a\",\n    \"b\",\n    \"c\",\n]\nmodules = [\"m\"]\n").unwrap();
        let child = dir.path().join("child.toml");
        std::fs::write(&child, "extends = \"base.toml\"\n[guest]\npackages = { remove = [\"b\"], add = [\n    \"d\",\n] }\nmodules = { replace = [\"n\"] }\nservices = { add = [\"default:x\"] }\n").unwrap();
        let (merged, origins) = load_merged(&child, &mut Vec::new(), &mut Vec::new()).unwrap();
        assert_eq!(merged["guest"]["packages"], Value::Array(["a", "c", "d"].map(|s| Value::String(s.into())).to_vec()));
        let at = |k: &str| origins.get(k).map(|l| format!("{}:{}", l.file.file_name().unwrap().to_string_lossy(), l.line));
        assert_eq!(at("guest.packages[0]").as_deref(), Some("base.toml:3"));
        assert_eq!(at("guest.packages[1]").as_deref(), Some("base.toml:5"), "c keeps its line after b is removed");
        assert_eq!(at("guest.packages[2]").as_deref(), Some("child.toml:4"));
        assert_eq!(at("guest.packages[3]"), None);
        assert_eq!(at("guest.modules[0]").as_deref(), Some("child.toml:6"));
        assert_eq!(at("guest.services[0]").as_deref(), Some("child.toml:7"));
        assert_eq!(merged["guest"]["services"], Value::Array(vec![Value::String("default:x".into())]));
    }

    /// A child section that holds only `remove` (or `add`) is that section,
    /// whether or not the parent has it: `[guest] remove = [...]` once
    /// turned the whole guest section into an empty list.
    #[test]
    fn a_section_with_only_remove_is_a_section_not_a_list_edit() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("base.toml");
        std::fs::write(&parent, "[guest]
packages = [\"a\"]\n").unwrap();
        for (name, text) in [("child.toml", "extends = \"base.toml\"\n[guest]\nremove = [\"/x\"]\n"), ("child2.toml", "extends = \"base.toml\"\n[runtime]\nremove = [\"/y\"]\n")] {
            let child = dir.path().join(name);
            std::fs::write(&child, text).unwrap();
            let (merged, _) = load_merged(&child, &mut Vec::new(), &mut Vec::new()).unwrap();
            assert!(merged["guest"].is_table(), "{name}: {merged:?}");
            assert_eq!(merged["guest"]["packages"][0].as_str(), Some("a"));
        }
        let (merged, _) = load_merged(&dir.path().join("child.toml"), &mut Vec::new(), &mut Vec::new()).unwrap();
        assert_eq!(merged["guest"]["remove"][0].as_str(), Some("/x"));
        let (merged, _) = load_merged(&dir.path().join("child2.toml"), &mut Vec::new(), &mut Vec::new()).unwrap();
        assert_eq!(merged["runtime"]["remove"][0].as_str(), Some("/y"));
    }

    /// A two-platform apk recipe in `dir` with `extra` appended.
    fn platforms_recipe(dir: &Path, extra: &str) -> PathBuf {
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        std::fs::write(dir.join("keys/k.rsa.pub"), "").unwrap();
        std::fs::create_dir_all(dir.join("frag")).unwrap();
        std::fs::write(dir.join("frag/arm.config"), "CONFIG_X=y\n").unwrap();
        let p = dir.join("multi.toml");
        let text = format!(
            "[image]\nname = \"m\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[sources.a]\ntype = \"apk\"\nmirror = \"file:///nowhere\"\nbranch = \"v3.22\"\nrepositories = [\"main\"]\nkeys = [\"keys\"]\n\n[guest]\nsource = \"a\"\npackages = [\"busybox\"]\n{extra}"
        );
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn each_platform_gets_its_recipe_with_its_arch_machine_and_table() {
        let dir = tempfile::tempdir().unwrap();
        let p = platforms_recipe(dir.path(), "\n[platform.\"linux/arm64\".guest]\npackages = { add = [\n    \"arm-only\",\n] }\n\n[platform.\"linux/arm64\".kernel]\nfragments = [\"frag/arm.config\"]\n");
        let l = load(&p).unwrap();
        assert!(l.is_multi_platform());
        let [amd, arm] = &l.variants[..] else { panic!("two platforms: {:?}", l.variants.len()) };
        assert_eq!((amd.platform, arm.platform), (Some(Arch::X86_64), Some(Arch::Aarch64)));
        assert_eq!((amd.recipe.sources["a"].arch(), arm.recipe.sources["a"].arch()), ("x86_64", "aarch64"));
        assert_eq!((amd.recipe.vm.machine.as_str(), arm.recipe.vm.machine.as_str()), ("microvm", "virt"));
        assert_eq!(amd.recipe.guest.packages, ["busybox"]);
        assert_eq!(arm.recipe.guest.packages, ["busybox", "arm-only"]);
        // Paths in a platform's table are relative to its file, and its
        // values keep their lines.
        assert_eq!(arm.recipe.kernel.fragments, [dir.path().join("frag/arm.config")]);
        assert!(amd.recipe.kernel.fragments.is_empty());
        assert_eq!(arm.locate("guest.packages[1]").map(|l| l.line), Some(18));
        // One lock and one inputs digest for the recipe: every platform's inputs.
        assert!(l.inputs.keys().any(|k| k.ends_with("arm.config")), "{:?}", l.inputs);
        assert_eq!(amd.inputs, l.inputs);
    }

    #[test]
    fn platform_mistakes_point_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = |extra: &str| {
            let e = load(&platforms_recipe(dir.path(), extra)).unwrap_err();
            (e.location.map(|l| l.line), e.key, e.message)
        };
        let p = platforms_recipe(dir.path(), "");
        let text = std::fs::read_to_string(&p).unwrap().replace("keys = [\"keys\"]\n", "keys = [\"keys\"]\narch = \"x86_64\"\n");
        std::fs::write(&p, text).unwrap();
        let e = load(&p).unwrap_err();
        assert_eq!((e.location.map(|l| l.line), e.key.as_str()), (Some(11), "sources.a.arch"), "{}", e.message);
        assert!(e.message.contains("contradicts linux/arm64"), "{}", e.message);
        let (line, key, msg) = err("[platform.\"linux/riscv64\".vm]\nmachine = \"virt\"\n");
        assert_eq!((line, key.as_str()), (Some(15), "platform.linux/riscv64"), "{msg}");
        assert!(msg.contains("not one of `image.platforms`"), "{msg}");
        let (line, key, msg) = err("[platform.\"linux/amd64\".vm]\nmachine = \"virt\"\n");
        assert_eq!((line, key.as_str()), (Some(16), "vm.machine"), "{msg}");
        assert!(msg.contains("for platform linux/amd64"), "{msg}");
        let p = platforms_recipe(dir.path(), "");
        let text = std::fs::read_to_string(&p).unwrap().replace("\"linux/arm64\"]", "\"linux/s390x\"]");
        std::fs::write(&p, text).unwrap();
        let e = load(&p).unwrap_err();
        assert_eq!((e.key.as_str(), e.location.map(|l| l.line)), ("image.platforms[1]", Some(3)), "{}", e.message);
        let p = dir.path().join("single.toml");
        std::fs::write(&p, "extends = \"multi.toml\"\n[image]\nplatforms = { replace = [] }\n[platform.\"linux/arm64\".vm]\nmachine = \"virt\"\n").unwrap();
        platforms_recipe(dir.path(), "");
        let e = load(&p).unwrap_err();
        assert!(e.message.contains("the recipe lists none"), "{}", e.message);
    }

    #[test]
    fn one_platform_is_a_plain_recipe_of_that_platform() {
        let dir = tempfile::tempdir().unwrap();
        platforms_recipe(dir.path(), "[platform.\"linux/arm64\".guest]\npackages = { add = [\"arm-only\"] }\n");
        let p = dir.path().join("arm.toml");
        std::fs::write(&p, "extends = \"multi.toml\"\n[image]\nplatforms = { replace = [\"linux/arm64\"] }\n").unwrap();
        let l = load(&p).unwrap();
        assert!(!l.is_multi_platform());
        assert_eq!(l.platform, Some(Arch::Aarch64));
        assert_eq!(l.recipe.arch(), Arch::Aarch64);
        assert_eq!(l.recipe.guest.packages, ["busybox", "arm-only"]);
    }
}
