//! The README's exit-code table is the code's table.

use std::collections::BTreeMap;

#[test]
fn readme_exit_codes_match_the_code() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let table = &readme[readme.find("| code | meaning |").expect("the exit code table")..];
    let rows: BTreeMap<u8, String> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].parse().unwrap(), cells[1].to_string())
        })
        .collect();
    let mut want: BTreeMap<u8, Vec<&str>> = BTreeMap::from([(0, vec!["success"])]);
    for (_, code, meaning) in dinv_build::EXIT_CODES {
        want.entry(*code).or_default().push(meaning);
    }
    let want: BTreeMap<u8, String> = want.into_iter().map(|(c, m)| (c, m.join("; or "))).collect();
    assert_eq!(rows, want, "README.md's exit code table and dinv_build::EXIT_CODES differ");
}
