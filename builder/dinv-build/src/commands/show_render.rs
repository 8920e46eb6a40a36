//! Rendering the merged recipe with the origin of every value (`show`).

/// Renders a merged recipe as TOML-like text, each value followed by
/// `# file:line` of where it came from.
pub fn render(t: &toml::Table, locate: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    render_table(t, "", locate, &mut out);
    out
}

fn origin(locate: &dyn Fn(&str) -> Option<String>, key: &str) -> String {
    locate(key).map(|l| format!("  # {l}")).unwrap_or_default()
}

fn inline(v: &toml::Value) -> String {
    toml::Value::to_string(v)
}

/// A key as TOML writes it: bare when it can be, quoted otherwise (a label
/// such as `org.example.team` is one key, not three).
fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        inline(&toml::Value::String(k.to_string()))
    }
}

fn render_table(t: &toml::Table, prefix: &str, locate: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    render_table_at(t, prefix, "", locate, out)
}

/// `prefix` is the dotted key for origins; `header` the same path as TOML writes it.
fn render_table_at(t: &toml::Table, prefix: &str, header: &str, locate: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    let key_of = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    let header_of = |k: &str| if header.is_empty() { toml_key(k) } else { format!("{header}.{}", toml_key(k)) };
    // Plain values first, then sub-tables, as TOML requires.
    for (k, v) in t {
        let key = key_of(k);
        match v {
            toml::Value::Table(_) => {}
            toml::Value::Array(a) if !a.is_empty() && a.iter().all(|e| e.is_table()) => {}
            toml::Value::Array(a) if !a.is_empty() => {
                out.push_str(&format!("{} = [\n", toml_key(k)));
                for (i, e) in a.iter().enumerate() {
                    out.push_str(&format!("    {},{}\n", inline(e), origin(locate, &format!("{key}[{i}]"))));
                }
                out.push_str("]\n");
            }
            _ => out.push_str(&format!("{} = {}{}\n", toml_key(k), inline(v), origin(locate, &key))),
        }
    }
    for (k, v) in t {
        let key = key_of(k);
        match v {
            toml::Value::Table(sub) => {
                let h = header_of(k);
                out.push_str(&format!("\n[{h}]{}\n", origin(locate, &key)));
                render_table_at(sub, &key, &h, locate, out);
            }
            toml::Value::Array(a) if !a.is_empty() && a.iter().all(|e| e.is_table()) => {
                let h = header_of(k);
                for (i, e) in a.iter().enumerate() {
                    let ek = format!("{key}[{i}]");
                    out.push_str(&format!("\n[[{h}]]{}\n", origin(locate, &ek)));
                    if let toml::Value::Table(sub) = e {
                        render_table_at(sub, &ek, &h, locate, out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_bare_are_quoted() {
        let t: toml::Table = toml::from_str("[image.labels]\n\"org.example.team\" = \"ci\"\n[\"a b\"]\nx = 1\n").unwrap();
        let out = render(&t, &|k| Some(k.to_string()));
        assert!(out.contains("\n[image.labels]  # image.labels\n\"org.example.team\" = \"ci\"  # image.labels.org.example.team\n"), "{out}");
        assert!(out.contains("\n[\"a b\"]  # a b\nx = 1  # a b.x\n"), "{out}");
        // What `show` prints parses back to the same table.
        let plain: String = out.lines().map(|l| l.split("  # ").next().unwrap().to_string() + "\n").collect();
        assert_eq!(toml::from_str::<toml::Table>(&plain).unwrap(), t);
    }
}
