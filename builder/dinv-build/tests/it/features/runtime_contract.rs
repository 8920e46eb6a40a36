//! One contract for every runtime setting: for random values of every
//! setting a recipe can set, `dinv-build check` accepts the value exactly
//! when the image's own launcher (the embedded binary, `print-qemu-args`)
//! accepts it as its `DINV_*` variable. Fixed seed, printed on failure.

use std::fs;
use std::path::Path;
use std::process::Command;

use dinv_contract::settings::{Kind, SETTINGS};
use dinv_test_support::alpine_repo::repo_root;
use dinv_test_support::cli::{text, Cli};

/// xorshift64*: small, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A value of the recipe's type for a setting: near the bounds, far off,
/// with every suffix, and junk. `integer` when the recipe key is a number.
fn draw(rng: &mut Rng, kind: &Kind) -> (String, bool) {
    match kind {
        Kind::Count { max, .. } => {
            let n = match rng.below(3) {
                0 => rng.below(4),
                1 => max.saturating_sub(2) + rng.below(5),
                _ => rng.below(1000),
            };
            (n.to_string(), true)
        }
        Kind::WholeSeconds { max } => {
            let n = match rng.below(3) {
                0 => rng.below(12),
                1 => max - 2 + rng.below(5),
                _ => rng.below(100_000),
            };
            (n.to_string(), true)
        }
        Kind::Seconds { max } => {
            let n = match rng.below(3) {
                0 => rng.below(30),
                1 => max - 2 + rng.below(5),
                _ => rng.below(1_000_000),
            };
            (n.to_string(), true)
        }
        Kind::Size { .. } => {
            let n = match rng.below(4) {
                0 => rng.below(3),
                1 => rng.below(300),
                2 => rng.below(1 << 20),
                _ => rng.below(u64::MAX / 2),
            };
            let suffix = rng.pick(&["", "", "K", "M", "G", "T", "B", "MiB", "GB", "k", "m", "X", ".5G", " M"]);
            (format!("{n}{suffix}"), false)
        }
        Kind::Choice(words) => {
            let w = rng.pick(words);
            let v = match rng.below(3) {
                0 => w.to_string(),
                1 => w.to_uppercase(),
                _ => rng.pick(&["pc", "microvm ", " q35", "virt"]).to_string(),
            };
            (v, false)
        }
        other => panic!("no recipe key has kind {other:?}"),
    }
}

#[test]
fn check_accepts_exactly_what_the_launcher_accepts() {
    let seed = std::env::var("DINV_PROPTEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_d1f7_u64);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let launcher = dir.path().join("dinv-launcher");
    fs::write(&launcher, dinv_build::launcher_binary()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("launcher.json");
    fs::write(&config, r#"{"kernel":"/k","rootfs":"/r","qemu":"/q"}"#).unwrap();
    let parent = repo_root().join("recipes/default.toml").canonicalize().unwrap();
    let cli = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path());

    let samples = 25;
    let mut checked = 0;
    for s in SETTINGS {
        let Some(key) = s.recipe_key else { continue };
        let (section, field) = key.split_once('.').unwrap();
        for _ in 0..samples {
            let (value, integer) = draw(&mut rng, &s.kind);
            let toml_value = if integer { value.clone() } else { format!("{value:?}") };
            fs::write(dir.path().join("r.toml"), format!("extends = {:?}\n\n[{section}]\n{field} = {toml_value}\n", parent.display().to_string())).unwrap();
            let o = cli.run(&["check", "r.toml"]);
            let check_ok = o.status.success();
            assert!(check_ok || o.status.code() == Some(2), "seed {seed}: check crashed on {key} = {toml_value}: {}", text(&o));
            let l = Command::new(&launcher)
                .arg("print-qemu-args")
                .env_clear()
                .env("DINV_LAUNCHER_CONFIG", &config)
                .env("DINV_ACCEL", "tcg")
                .env(s.var, &value)
                .output()
                .unwrap();
            let launcher_ok = l.status.success();
            assert!(launcher_ok || l.status.code() == Some(2), "seed {seed}: launcher crashed on {}={value:?}: {}", s.var, String::from_utf8_lossy(&l.stderr));
            assert_eq!(
                check_ok,
                launcher_ok,
                "seed {seed}: {key} = {toml_value}: check {} but the launcher {} {}={value:?}\ncheck: {}\nlauncher: {}",
                if check_ok { "accepts" } else { "refuses" },
                if launcher_ok { "accepts" } else { "refuses" },
                s.var,
                text(&o),
                String::from_utf8_lossy(&l.stderr)
            );
            if !check_ok {
                assert!(text(&o).contains(&format!("r.toml:4: {key}: ")), "seed {seed}: {key}: refusal not at its line: {}", text(&o));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, samples * SETTINGS.iter().filter(|s| s.recipe_key.is_some()).count());
    eprintln!("seed {seed}: {checked} values, check and the launcher agree on all");
    let _ = Path::new("");
}
