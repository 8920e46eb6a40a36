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

    // A misspelt package: the recipe line that asked, and the index's nearest names.
    fs::write(&r, mirror.child_recipe(&repo_root().join("recipes/default.toml").canonicalize().unwrap(), "\n[guest]\npackages = [\"docker-clj\"]\n")).unwrap();
    let o = cli(dir.path()).run(&["resolve", "r.toml"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("r.toml:") && t.contains(": guest.packages[") && t.contains("docker-clj") && t.contains("did you mean `docker-cli`?"), "{t}");
}

/// Every value `build` or the launcher would refuse is refused by `check`,
/// with exit 2, the file:line and the key.
#[test]
fn check_refuses_what_build_or_the_launcher_would() {
    let dir = tempfile::tempdir().unwrap();
    let parent = repo_root().join("recipes/default.toml").canonicalize().unwrap();
    fs::create_dir_all(dir.path().join("overlay/etc")).unwrap();
    fs::write(dir.path().join("overlay/etc/team.conf.j2"), "name = {{ guest.hostname }}\nowner = {{ team.owner }}\n").unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("[image]\ntag = \"Has Spaces\"\n", "image.tag", "not a valid image tag"),
        ("[image]\nname = \"Has Spaces\"\n", "image.name", "not a valid image name"),
        ("[[overlays]]\npath = \"overlay\"\n", "overlays[1].path", "team.conf.j2:2: undefined value `team.owner`"),
        ("[docker]\nregistry_mirrors = [\"not a url\"]\n", "docker.registry_mirrors[0]", "not a registry mirror URL"),
        ("[docker.proxy]\nhttp = \"proxy:3128\"\n", "docker.proxy.http", "not a proxy URL"),
        ("[docker]\nhosts = [\"tcp://0.0.0.0:99999\"]\n", "docker.hosts[2]", "not a port number"),
        ("[vm]\nmemory = \"64K\"\n", "vm.memory", "DINV_MEMORY"),
        ("[vm]\nmemory = \"0\"\n", "vm.memory", "out of range"),
        ("[vm]\nmemory = \"1T\"\n", "vm.memory", "out of range"),
        ("[vm]\nmemory = \"100M\"\n", "vm.memory", "from 128M"),
        ("[vm]\ncpus = 300\n", "vm.cpus", "from 1 to 255"),
        ("[vm]\ncpus = 0\n", "vm.cpus", "from 1 to 255"),
        ("[vm]\nmachine = \"virt\"\n", "vm.machine", "\"virt\" is the arm64 machine; an x86_64 image boots microvm or q35"),
        ("[sources.alpine]\narch = \"riscv64\"\n", "sources.alpine.arch", "\"riscv64\": images are built for x86_64 (apk `x86_64`, Debian `amd64`) and arm64 (`aarch64`, `arm64`)"),
        (
            "[sources.arm]\ntype = \"deb\"\nsuites = [\"trixie\"]\narch = \"arm64\"\n\n[runtime]\nsource = \"arm\"\n",
            "sources.arm.arch",
            "\"arm64\": the runtime source must have the guest source's architecture (\"x86_64\", sources.alpine.arch)",
        ),
        ("[vm]\ndocker_disk_size = \"1M\"\n", "vm.docker_disk_size", "DINV_DOCKER_SIZE"),
        ("[docker]\nshutdown_timeout = 4000\n\n[vm]\nstop_timeout = 5000\n", "docker.shutdown_timeout", "from 0 to 3600"),
        ("[docker]\nshutdown_timeout = 30\n", "docker.shutdown_timeout", "below DINV_STOP_TIMEOUT"),
        ("[snapshot]\nmemory = \"64M\"\n", "snapshot.memory", "DINV_MEMORY"),
        ("[snapshot]\nmounts = 17\n", "snapshot.mounts", "at most 16"),
        ("[snapshot]\nquiesce = [\"sync\", \"defrag\"]\n", "snapshot.quiesce[1]", "\"defrag\" is not a quiesce step (known: sync, page-out, drop-caches, warm-api, fstrim, zero-free-memory)"),
    ];
    // An arm64 guest source with the inherited machine: the error is where
    // the machine is set, and says what to change.
    fs::write(dir.path().join("arm.toml"), format!("extends = {:?}\n\n[sources.alpine]\narch = \"aarch64\"\n", parent.display().to_string())).unwrap();
    let t = text(&cli(dir.path()).run(&["check", "arm.toml"]));
    assert!(t.contains("default.toml:") && t.contains(": vm.machine: \"microvm\" is an x86_64 machine, and sources.alpine.arch makes this an arm64 image: set vm.machine = \"virt\""), "{t}");
    for (body, key, why) in cases {
        let r = dir.path().join("recipe.toml");
        fs::write(&r, format!("extends = {:?}\n\n{body}", parent.display().to_string())).unwrap();
        let o = cli(dir.path()).run(&["check", "recipe.toml"]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{body}: {t}");
        assert!(t.contains(&format!("recipe.toml:")) && t.contains(&format!(": {key}: ")) && t.contains(why), "{body}: expected {key} and {why:?} in: {t}");
        // The line is the key's own line in the child recipe.
        let line = format!("extends = \"\"\n\n{body}").lines().position(|l| l.starts_with(key.rsplit('.').next().unwrap().split('[').next().unwrap())).map(|i| i + 1);
        if let Some(line) = line {
            assert!(t.contains(&format!("recipe.toml:{line}: {key}")), "{body}: line {line} in {t}");
        }
    }
}

fn json_error(o: &std::process::Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)));
    assert_eq!(v["ok"], false, "{v}");
    v["error"].clone()
}

#[test]
fn json_errors_for_usage_type_and_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    // A misspelt command: JSON, exit 2, and a suggestion (also as text).
    let o = cli(dir.path()).run(&["--json", "biuld", "recipes/default.toml"]);
    let e = json_error(&o);
    assert_eq!((o.status.code(), e["kind"].as_str()), (Some(2), Some("usage")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("did you mean `build`?"), "{e}");
    let t = text(&cli(dir.path()).run(&["biuld", "x.toml"]));
    assert!(t.contains("did you mean `build`?"), "{t}");
    // clap's own usage errors are JSON too.
    let o = cli(dir.path()).run(&["--json", "check"]);
    assert_eq!((o.status.code(), json_error(&o)["kind"].as_str()), (Some(2), Some("usage")));

    // A type error: our wording, one line, file/line/key as fields.
    let parent = repo_root().join("recipes/default.toml").canonicalize().unwrap();
    fs::write(dir.path().join("r.toml"), format!("extends = {:?}\n\n[vm]\ncpus = \"two\"\n", parent.display().to_string())).unwrap();
    let o = cli(dir.path()).run(&["--json", "check", "r.toml"]);
    let e = json_error(&o);
    assert_eq!((e["kind"].as_str(), e["line"].as_u64(), e["key"].as_str()), (Some("recipe"), Some(4), Some("vm.cpus")), "{e}");
    assert_eq!(e["reason"], "expected a whole number, found the string \"two\"", "{e}");
    assert!(e["file"].as_str().unwrap().ends_with("r.toml") && !e["message"].as_str().unwrap().contains('\n'), "{e}");

    // Every missing required key at once.
    fs::write(dir.path().join("empty.toml"), "[vm]\ncpus = 2\n").unwrap();
    let t = text(&cli(dir.path()).run(&["check", "empty.toml"]));
    assert!(t.contains("`image.name`") && t.contains("`sources`") && t.contains("`guest.source`"), "{t}");
}
