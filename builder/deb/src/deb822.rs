//! deb822 paragraphs (`Field: value`, continuation lines, blank-line
//! separated), parsed without copying: values are slices of the input.

use crate::DebError;

/// One paragraph: fields in file order, values borrowed from the input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, &'a str)>,
    /// 1-based line of the paragraph's first field, for messages.
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The value of a field (names compare case-insensitively, as Policy says).
    /// Multi-line values keep their continuation lines, `\n`-joined, with
    /// the first line's leading whitespace removed.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// All fields in file order.
    pub fn fields(&self) -> &[(&'a str, &'a str)] {
        &self.fields
    }

    /// True when the paragraph has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// The first line of a multi-line value (e.g. the synopsis of a Description).
pub fn first_line(value: &str) -> &str {
    value.split('\n').next().unwrap_or("").trim_end()
}

/// Iterator over the paragraphs of a deb822 text; see [`paragraphs`].
pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    what: &'a str,
}

/// Parses the paragraphs of `text`. `what` names the file in errors.
/// Comment lines are refused: the archive's index files never have them,
/// so one means the input is not what we think it is.
pub fn paragraphs<'a>(text: &'a str, what: &'a str) -> Paragraphs<'a> {
    Paragraphs { text, pos: 0, line: 0, what }
}

/// Parses every paragraph of `text` into a vector.
pub fn parse_all<'a>(text: &'a str, what: &'a str) -> Result<Vec<Paragraph<'a>>, DebError> {
    paragraphs(text, what).collect()
}

impl<'a> Paragraphs<'a> {
    fn err(&self, why: &str) -> DebError {
        DebError::Malformed { what: self.what.to_string(), line: Some(self.line), why: why.to_string() }
    }

    /// The next line without its newline, or `None` at the end.
    fn next_line(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let (line, adv) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += adv;
        self.line += 1;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| b == b' ' || b == b'\t')
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, DebError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut para = Paragraph { fields: Vec::with_capacity(24), line: 0 };
        // Start (byte offset in text) of the current field's value, and its end.
        let mut open: Option<(&'a str, usize, usize)> = None;
        loop {
            let start = self.pos;
            let Some(line) = self.next_line() else { break };
            if is_blank(line) {
                if para.fields.is_empty() && open.is_none() {
                    continue;
                }
                break;
            }
            let first = line.as_bytes()[0];
            if first == b' ' || first == b'\t' {
                match open.as_mut() {
                    Some((_, _, end)) => *end = start + line.len(),
                    None => return Some(Err(self.err("continuation line outside a field"))),
                }
                continue;
            }
            if first == b'#' {
                return Some(Err(self.err("comment lines are not allowed here")));
            }
            let Some(colon) = memchr::memchr(b':', line.as_bytes()) else {
                return Some(Err(self.err("line is neither `Field: value` nor a continuation")));
            };
            let name = &line[..colon];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Some(Err(self.err("invalid field name")));
            }
            if let Some((n, s, e)) = open.take() {
                para.fields.push((n, self.text[s..e].trim_start()));
            }
            if para.fields.is_empty() {
                para.line = self.line;
            }
            open = Some((name, start + colon + 1, start + line.len()));
        }
        if let Some((n, s, e)) = open.take() {
            para.fields.push((n, self.text[s..e].trim_start()));
        }
        if para.fields.is_empty() {
            return None;
        }
        // Pairwise for the usual couple of dozen fields; a set beyond that,
        // so a paragraph of many thousand fields is not quadratic.
        let mut seen = std::collections::HashSet::new();
        let many = para.fields.len() > 64;
        for (i, (k, _)) in para.fields.iter().enumerate() {
            let dup = if many {
                !seen.insert(k.to_ascii_lowercase())
            } else {
                para.fields[..i].iter().any(|(o, _)| o.eq_ignore_ascii_case(k))
            };
            if dup {
                let what = self.what.to_string();
                return Some(Err(DebError::Malformed {
                    what,
                    line: Some(para.line),
                    why: format!("duplicate field {k:?}"),
                }));
            }
        }
        Some(Ok(para))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n more\n .\n end\nDepends: b\n\n\n \nPackage: b\r\nversion: 1\n";
        let ps = parse_all(text, "test").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Description"), Some("short\n more\n .\n end"));
        assert_eq!(first_line(ps[0].get("Description").unwrap()), "short");
        assert_eq!(ps[0].get("Depends"), Some("b"));
        assert_eq!(ps[1].get("Version"), Some("1"));
        assert_eq!(ps[1].line, 10);
        assert_eq!(ps[0].fields().len(), 3);
    }

    #[test]
    fn empty_value_then_continuation() {
        let ps = parse_all("SHA256:\n abc 1 x\n def 2 y\n", "t").unwrap();
        assert_eq!(ps[0].get("SHA256"), Some("abc 1 x\n def 2 y"));
    }

    /// Found by reading the code while fuzzing (deb_packages): duplicate
    /// field names were checked pairwise, quadratic in the fields of a
    /// paragraph (200 000 one-line fields: 2·10^10 comparisons).
    #[test]
    fn many_fields_are_checked_in_linear_time() {
        let text: String = (0..200_000).map(|i| format!("F{i}: x\n")).collect();
        let start = std::time::Instant::now();
        assert_eq!(parse_all(&text, "t").unwrap()[0].fields().len(), 200_000);
        let dup = format!("{text}f7: again\n");
        let e = parse_all(&dup, "t").unwrap_err().to_string();
        assert!(e.contains("duplicate field \"f7\""), "{e}");
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, why) in [
            ("Package: a\n# comment\n", "comment"),
            (" cont\n", "continuation"),
            ("Package: a\nnocolon\n", "neither"),
            ("Package: a\npackage: b\n", "duplicate"),
            ("Package: a\nBad Name: b\n", "invalid field name"),
        ] {
            let e = parse_all(text, "Packages").unwrap_err().to_string();
            assert!(e.contains("Packages") && e.contains("line") && e.contains(why), "{text:?}: {e}");
        }
    }
}
