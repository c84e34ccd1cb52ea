//! The layers of `src/` depend one way: a module never names one above it.
//!
//! Bottom to top: protocol, telemetry → config → control, topology → proxy, provision → switchover → admin
//! → server → demo. `testbed` (starts real servers) stands alone at the bottom. The
//! test reads every `crate::<module>` path in the code (comments excluded) and fails
//! naming the file, the line and the two layers. `cargo test --test layers` runs it.

use std::path::{Path, PathBuf};

/// Layer of each top-level module; equal layers may not name each other either.
const LAYERS: &[(&str, u32)] = &[
    ("protocol", 0),
    ("testbed", 0),
    ("telemetry", 0),
    ("config", 1),
    ("control", 2),
    ("topology", 2),
    ("proxy", 3),
    ("provision", 3),
    ("switchover", 4),
    ("admin", 5),
    ("server", 6),
    ("demo", 7),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

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

/// The module names a line refers to as `crate::name`, with `crate::{a, b}` groups.
fn crate_refs(code: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').collect()
        } else {
            vec![rest]
        };
        for name in names {
            let name: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                refs.push(name);
            }
        }
    }
    refs
}

#[test]
fn no_module_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_str().unwrap().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| {
            panic!("src/{module} has no layer: add it to LAYERS in tests/layers.rs")
        });
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for name in crate_refs(code) {
                if name == module {
                    continue;
                }
                let Some(theirs) = layer(&name) else {
                    wrong.push(format!(
                        "src/{}:{}: names crate::{name}, which has no layer",
                        relative.display(),
                        n + 1
                    ));
                    continue;
                };
                if theirs >= own {
                    wrong.push(format!(
                        "src/{}:{}: {module} (layer {own}) names {name} (layer {theirs})",
                        relative.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(
                layer(name).is_some(),
                "module {name} has no layer in tests/layers.rs"
            );
        }
    }
}

#[test]
fn the_scanner_reads_groups_and_paths() {
    assert_eq!(
        crate_refs("use crate::{config::Config, proxy::Proxy};"),
        ["config", "proxy"]
    );
    assert_eq!(crate_refs("x = crate::topology::Side::Blue;"), ["topology"]);
}
