//! `*.j2` templates in overlays and `[[files]]`: minijinja with strict
//! undefined (a misspelt variable is an error, not an empty string).
//!
//! Context: every recipe section by its key (`guest.hostname`,
//! `docker.bip`, `image.name`, `vm.memory`, ...), plus `daemon_json` (the
//! generated daemon.json as a value), `daemon_json_text` (as text) and
//! `image_ref` (`name:tag`).

use minijinja::{Environment, UndefinedBehavior, Value};

use super::docker;
use super::tree::err;
use crate::recipe::Recipe;
use crate::Result;

/// Suffix of files rendered as templates (dropped from the output name).
pub const SUFFIX: &str = ".j2";

/// The template context for a recipe.
pub fn context(recipe: &Recipe) -> Result<Value> {
    let serde_json::Value::Object(mut map) = serde_json::to_value(recipe).map_err(|e| err(format!("template context: {e}")))? else {
        return Err(err("template context: the recipe is not a table"));
    };
    let daemon = docker::daemon_json(&recipe.docker, None)?;
    map.insert("daemon_json_text".into(), serde_json::Value::from(serde_json::to_string_pretty(&daemon).unwrap_or_default()));
    map.insert("daemon_json".into(), daemon);
    map.insert("image_ref".into(), serde_json::Value::from(format!("{}:{}", recipe.image.name, recipe.image.tag)));
    Ok(Value::from_serialize(&map))
}

/// Renders `source`; errors name `file` and the template line.
pub fn render(file: &str, source: &str, ctx: &Value) -> Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Config files end in a newline; keep it.
    env.set_keep_trailing_newline(true);
    let fail = |e: minijinja::Error| {
        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
        err(format!("template {file}{line}: {}{detail}", e.kind()))
    };
    env.add_template_owned(file.to_string(), source.to_string()).map_err(fail)?;
    let t = env.get_template(file).map_err(fail)?;
    t.render(ctx).map_err(|e| {
        if e.kind() != minijinja::ErrorKind::UndefinedError {
            return fail(e);
        }
        // Name what is undefined: the template's free variables (dotted)
        // that the context does not have.
        let mut missing: Vec<String> = t.undeclared_variables(true).into_iter().filter(|v| !defined(ctx, v)).collect();
        missing.sort();
        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        match missing.as_slice() {
            [] => fail(e),
            names => err(format!("template {file}{line}: undefined value {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))),
        }
    })
}

/// True when the dotted name resolves in `ctx`.
fn defined(ctx: &Value, dotted: &str) -> bool {
    let mut v = ctx.clone();
    for part in dotted.split('.') {
        match v.get_attr(part) {
            Ok(next) if !next.is_undefined() => v = next,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        toml::from_str("[image]\nname = \"dinv\"\n[sources.s]\ntype = \"apk\"\nrepositories = []\n[guest]\nsource = \"s\"\npackages = []\nhostname = \"box\"\n").unwrap()
    }

    #[test]
    fn renders_recipe_values() {
        let ctx = context(&recipe()).unwrap();
        let out = render("motd.j2", "{{ guest.hostname }} {{ image_ref }} {{ docker.bip }} {{ docker.shutdown_timeout }} {{ daemon_json.bip }}\n", &ctx).unwrap();
        assert_eq!(out, "box dinv:latest 172.19.0.1/16 5 172.19.0.1/16\n");
    }

    #[test]
    fn errors_name_file_and_line() {
        let ctx = context(&recipe()).unwrap();
        let e = render("/o/etc/motd.j2", "ok\n{{ guest.hostnme }}\n", &ctx).unwrap_err().to_string();
        assert!(e.contains("template /o/etc/motd.j2:2: undefined value `guest.hostnme`"), "{e}");
        let e = render("/o/x.j2", "a\nb\n{% if %}\n", &ctx).unwrap_err().to_string();
        assert!(e.contains("template /o/x.j2:3: syntax error"), "{e}");
    }
}
