//! What a new user sees from the CLI when something is wrong: one key
//! path with a suggestion for a typo, the line of a TOML syntax error, the
//! reason a recipe cannot be read, and `resolve`'s reasons kept readable.

use std::fs;

use dinv_test_support::alpine_repo::{repo_root, AlpineMirror};
use dinv_test_support::cli::{text, Cli};

fn cli(dir: &std::path::Path) -> Cli {
    Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir)
}

#[test]
fn a_misspelt_key_is_named_once_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("recipe.toml");
    let parent = repo_root().join("recipes/default.toml").canonicalize().unwrap();
    fs::write(&r, format!("extends = {:?}\n\n[vm]\nmemroy = \"1G\"\n", parent.display().to_string())).unwrap();
    let o = cli(dir.path()).run(&["check", "recipe.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("recipe.toml:4: vm.memroy: unknown field `memroy`, did you mean `memory`?"), "{t}");
    assert!(!t.contains("memroy.memroy"), "{t}");
    // A wrong value of a fixed set names the choice too.
    fs::write(&r, format!("extends = {:?}\n\n[guest]\ninit = \"openrcc\"\n", parent.display().to_string())).unwrap();
    let t = text(&cli(dir.path()).run(&["check", "recipe.toml"]));
    assert!(t.contains("recipe.toml:4: guest.init: unknown variant `openrcc`, did you mean `openrc`?"), "{t}");
}

#[test]
fn a_toml_syntax_error_points_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("recipe.toml"), "[image]\nname = \"x\"\n\n[guest\nsource = \"a\"\n").unwrap();
    let o = cli(dir.path()).run(&["check", "recipe.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.starts_with("error: recipe.toml:4: invalid TOML: "), "{t}");
    assert!(!t.contains(": :"), "no empty key: {t}");
}

#[test]
fn a_missing_recipe_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = cli(dir.path()).run(&["check", "nope.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.starts_with("error: cannot read recipe nope.toml: "), "{t}");
    assert!(!t.contains(": :"), "{t}");
    let o = cli(dir.path()).run(&["--json", "check", "nope.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["error"]["kind"].as_str(), v["error"]["exit_code"].as_u64()), (Some(false), Some("recipe"), Some(2)));
}

#[test]
fn resolve_keeps_reasons_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = AlpineMirror::write(dir.path());
    let r = dir.path().join("r.toml");
    fs::write(&r, mirror.child_recipe(&repo_root().join("recipes/default.toml").canonicalize().unwrap(), "")).unwrap();
    let o = cli(dir.path()).run(&["resolve", "r.toml"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("requested (requested"), "{t}");
    assert!(t.contains("requested (guest.packages)"), "{t}");
    let longest = t.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(longest < 160, "a line of {longest} characters:\n{t}");
    // musl is needed by most packages: a few reasons, then a count.
    let musl: Vec<&str> = t.lines().skip_while(|l| !l.trim_start().starts_with("musl ")).take(5).collect();
    assert!(musl.iter().any(|l| l.contains("more; --json lists every reason")), "{musl:?}");
    // --json keeps every reason.
    let o = cli(dir.path()).run(&["--json", "resolve", "r.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let musl = v["sets"][0]["packages"].as_array().unwrap().iter().find(|p| p["name"] == "musl").unwrap();
    assert!(musl["reasons"].as_array().unwrap().len() > 3, "{musl}");
}
