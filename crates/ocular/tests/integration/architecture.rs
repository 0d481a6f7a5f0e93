//! docs/ARCHITECTURE.md draws the crate graph; this keeps the drawing true. Each crate's
//! `[dependencies]` on workspace crates must equal its row in the table between the
//! `crate graph` markers, and every crate under `crates/` must have a row. The binary's admin
//! commands stay off the web crate: only `serve` names `ocular_server`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The workspace crates named in the `[dependencies]` table of `manifest` (a line-based read:
/// every dependency line in this workspace starts with the crate's name).
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_deps = false;
    let mut deps = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && line.starts_with("ocular") {
            let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            deps.insert(name);
        }
    }
    deps
}

fn actual() -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let name = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = \"").and_then(|n| n.strip_suffix('"')))
            .unwrap_or_else(|| panic!("no package name in {}", manifest.display()))
            .to_string();
        graph.insert(name, dependencies(&text));
    }
    graph
}

/// The rows of the table between the markers: `| \`crate\` | \`dep\`, \`dep\` |` (or `—`).
fn documented(doc: &str) -> Graph {
    let start = doc.find("<!-- crate graph").expect("start marker in docs/ARCHITECTURE.md");
    let end = doc.find("<!-- end crate graph -->").expect("end marker in docs/ARCHITECTURE.md");
    let mut graph = Graph::new();
    for row in doc[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let deps =
            cells[2].split(',').map(|d| d.trim().trim_matches('`').to_string()).filter(|d| d.starts_with("ocular"));
        assert!(graph.insert(name.clone(), deps.collect()).is_none(), "{name} has two rows");
    }
    graph
}

#[test]
fn the_documented_crate_graph_is_the_real_one() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let (documented, actual) = (documented(&doc), actual());
    assert!(actual.len() >= 10 && actual.contains_key("ocular-server"), "read the workspace: {actual:?}");
    for (name, deps) in &actual {
        let row = documented.get(name).unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no row for {name}"));
        assert_eq!(row, deps, "docs/ARCHITECTURE.md's row for {name} differs from its Cargo.toml [dependencies]");
    }
    for name in documented.keys() {
        assert!(actual.contains_key(name), "docs/ARCHITECTURE.md lists {name}, which is not a crate");
    }
}

#[test]
fn dependency_lines_are_read_only_from_the_dependencies_table() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nocular-core.workspace = true\n\
                    ocular-fetch = { workspace = true }\nserde = \"1\"\n\n[dev-dependencies]\nocular-image.workspace = true\n";
    assert_eq!(dependencies(manifest), BTreeSet::from(["ocular-core".to_string(), "ocular-fetch".to_string()]));
}

/// Admin commands print the HTTP API's bodies from `ocular-models`' report types and build
/// everything else through `ocular-app`; `serve` alone runs the web crate (comments may name it).
#[test]
fn only_serve_uses_the_web_crate() {
    let commands = root().join("crates/ocular/src/commands");
    let mut users = Vec::new();
    let mut files: Vec<PathBuf> = vec![root().join("crates/ocular/src/main.rs")];
    for entry in std::fs::read_dir(&commands).expect("commands/") {
        files.push(entry.expect("entry").path());
    }
    assert!(files.len() > 8, "read the commands: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        if text.lines().filter(|l| !l.trim_start().starts_with("//")).any(|l| l.contains("ocular_server")) {
            users.push(file.file_name().expect("name").to_string_lossy().into_owned());
        }
    }
    assert_eq!(users, ["serve.rs"], "only `ocular serve` may use ocular-server");
}

/// docs/TESTING.md's lint policy: a crate with no unsafe code says `#![forbid(unsafe_code)]` at
/// its root, so the first `unsafe` block needs a deliberate change there (and its `// SAFETY:`).
#[test]
fn crates_without_unsafe_code_forbid_it() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let uses_unsafe = |text: &str| {
        text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")).any(|l| {
            ["unsafe {", "unsafe fn", "unsafe impl", "unsafe extern", "unsafe trait"].iter().any(|u| l.contains(u))
        })
    };
    let mut missing = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let src = entry.expect("entry").path().join("src");
        let Some(crate_root) = ["lib.rs", "main.rs"].map(|f| src.join(f)).into_iter().find(|p| p.exists()) else {
            continue;
        };
        let mut files = Vec::new();
        sources(&src, &mut files);
        if files.iter().any(|f| uses_unsafe(&std::fs::read_to_string(f).expect("source"))) {
            continue;
        }
        checked += 1;
        if !std::fs::read_to_string(&crate_root).expect("crate root").contains("#![forbid(unsafe_code)]") {
            missing.push(crate_root.display().to_string());
        }
    }
    assert!(checked >= 8, "found the crates without unsafe code: {checked}");
    assert!(missing.is_empty(), "no unsafe code, yet no #![forbid(unsafe_code)]: {missing:?}");
}
