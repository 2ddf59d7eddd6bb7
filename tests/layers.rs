//! The code's layers point one way: each module of `src/` names (`crate::<module>`) only
//! the modules below it, and no role names another role. The table here is the one in the
//! README's Architecture section; a change to either is a change to both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may name, lowest layers first.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("role", &[]),
    ("tls", &[]),
    ("catalog", &["domain"]),
    ("telemetry", &["domain", "role"]),
    ("faults", &["domain", "role", "tls"]),
    ("stores", &["domain", "role", "catalog", "telemetry", "tls"]),
    (
        "http",
        &[
            "domain",
            "role",
            "catalog",
            "telemetry",
            "faults",
            "stores",
            "tls",
        ],
    ),
    (
        "roles",
        &[
            "domain",
            "role",
            "catalog",
            "telemetry",
            "faults",
            "stores",
            "http",
            "tls",
        ],
    ),
    (
        "config",
        &["domain", "role", "telemetry", "faults", "stores"],
    ),
    (
        "startup",
        &[
            "domain",
            "role",
            "catalog",
            "telemetry",
            "faults",
            "stores",
            "http",
            "roles",
            "config",
            "tls",
        ],
    ),
    (
        "cli",
        &["domain", "role", "telemetry", "faults", "stores", "config"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every `crate::<module>` a file names in code (comments aside), with its line.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut named = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let whole_word = at == 0 || !code[..at].ends_with(|c: char| c.is_alphanumeric());
            if whole_word && !module.is_empty() {
                named.push((number + 1, module));
            }
        }
    }
    named
}

#[test]
fn every_module_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let may = allowed
            .get(module.as_str())
            .unwrap_or_else(|| panic!("src/{module} is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        for (line, named) in named_modules(&text) {
            if named != module && !may.contains(&named.as_str()) {
                wrong.push(format!("{}:{line} names crate::{named}", file.display()));
            }
            let role_file = module == "roles" && !file.ends_with("roles/mod.rs");
            if role_file && named == "roles" {
                wrong.push(format!(
                    "{}:{line}: a role names another role",
                    file.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layers broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_what_it_checks() {
    let found =
        named_modules("use crate::http::client; // crate::startup\nlet x = crate::faults::leak();");
    assert_eq!(found, [(1, "http".to_string()), (2, "faults".to_string())]);
    assert!(named_modules("use ecommerce::startup; // not crate::x").is_empty());
}
