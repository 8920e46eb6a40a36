//! "Did you mean": the names nearest to a misspelt one, for recipe keys,
//! commands and package names alike.

/// Up to `max` of `names` within a small edit distance of `name` (1 for
/// names under 4 characters; else a third of its length, at least 2 so a
/// swapped pair is found, at most 3), nearest first.
pub fn nearest<'a>(name: &str, names: &[&'a str], max: usize) -> Vec<&'a str> {
    let len = name.chars().count();
    let limit = if len < 4 { 1 } else { (len / 3).clamp(2, 3) };
    let mut near: Vec<(usize, &str)> = names.iter().map(|n| (edit_distance(name, n), *n)).filter(|(d, _)| *d > 0 && *d <= limit).collect();
    near.sort();
    near.dedup_by_key(|(_, n)| *n);
    near.into_iter().take(max).map(|(_, n)| n).collect()
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_limits() {
        assert_eq!(edit_distance("memroy", "memory"), 2);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(nearest("biuld", &["build", "check", "lock"], 1), ["build"]);
        assert!(nearest("x", &["yyyy"], 3).is_empty());
    }
}
