//! Hostile packages: signed, valid archives whose members try to escape the
//! tree. The build must refuse them with a message naming the package and
//! the member, and nothing may be written outside the output directory.

use std::fs;
use std::path::Path;

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};
use dinv_test_support::cli::{text, Cli};

fn build_with(pkg: PackageSpec) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate("hostile@dinv.invalid-0000beef.rsa.pub", 1024, 11);
    write_repository(&dir.path().join("mirror"), "main", "x86_64", &[pkg], &key).unwrap();
    fs::create_dir_all(dir.path().join("keys")).unwrap();
    fs::write(dir.path().join("keys").join(&key.name), key.public_pem()).unwrap();
    let recipe = dir.path().join("recipe.toml");
    fs::write(
        &recipe,
        format!(
            "[image]\nname = \"hostile\"\n[sources.a]\ntype = \"apk\"\nrepositories = [{{ url = \"file://{}/main\" }}]\nkeys = [\"keys\"]\n[guest]\nsource = \"a\"\npackages = [\"evil\"]\n",
            dir.path().join("mirror").display()
        ),
    )
    .unwrap();
    let out = Cli::new(env!("CARGO_BIN_EXE_dinv-build"), dir.path()).run(&["build", recipe.to_str().unwrap()]);
    (out, dir)
}

fn assert_refused(out: &std::process::Output, dir: &Path, member: &str) {
    let text = text(out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("evil-1.0-r0"), "names the package: {text}");
    assert!(text.contains(member), "names the member {member:?}: {text}");
    assert!(!dir.join("out/hostile").exists(), "no output for a refused build");
}

#[test]
fn parent_directory_names_are_refused() {
    let (out, dir) = build_with(PackageSpec::new("evil", "1.0-r0").file("../../escaped", b"x".to_vec(), 0o644));
    assert_refused(&out, dir.path(), "../../escaped");
    assert!(!dir.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn absolute_names_are_refused() {
    let (out, dir) = build_with(PackageSpec::new("evil", "1.0-r0").file("/etc/evil", b"x".to_vec(), 0o644));
    assert_refused(&out, dir.path(), "/etc/evil");
}

#[test]
fn writes_through_a_symlink_are_refused() {
    let (out, dir) = build_with(
        PackageSpec::new("evil", "1.0-r0").symlink("sneaky", "/etc").file("sneaky/shadow", b"root::0:0:::::".to_vec(), 0o600),
    );
    assert_refused(&out, dir.path(), "sneaky/shadow");
}

#[test]
fn hard_links_out_of_the_tree_are_refused() {
    let (out, dir) = build_with(PackageSpec::new("evil", "1.0-r0").hardlink("passwd", "../../../etc/passwd"));
    assert_refused(&out, dir.path(), "passwd");
}
