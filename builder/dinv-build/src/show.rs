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

fn render_table(t: &toml::Table, prefix: &str, locate: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    let key_of = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    // Plain values first, then sub-tables, as TOML requires.
    for (k, v) in t {
        let key = key_of(k);
        match v {
            toml::Value::Table(_) => {}
            toml::Value::Array(a) if !a.is_empty() && a.iter().all(|e| e.is_table()) => {}
            toml::Value::Array(a) if !a.is_empty() => {
                out.push_str(&format!("{k} = [\n"));
                for (i, e) in a.iter().enumerate() {
                    out.push_str(&format!("    {},{}\n", inline(e), origin(locate, &format!("{key}[{i}]"))));
                }
                out.push_str("]\n");
            }
            _ => out.push_str(&format!("{k} = {}{}\n", inline(v), origin(locate, &key))),
        }
    }
    for (k, v) in t {
        let key = key_of(k);
        match v {
            toml::Value::Table(sub) => {
                out.push_str(&format!("\n[{key}]{}\n", origin(locate, &key)));
                render_table(sub, &key, locate, out);
            }
            toml::Value::Array(a) if !a.is_empty() && a.iter().all(|e| e.is_table()) => {
                for (i, e) in a.iter().enumerate() {
                    let ek = format!("{key}[{i}]");
                    out.push_str(&format!("\n[[{key}]]{}\n", origin(locate, &ek)));
                    if let toml::Value::Table(sub) = e {
                        render_table(sub, &ek, locate, out);
                    }
                }
            }
            _ => {}
        }
    }
}
