//! In every crate of the workspace, the modules of `src/` depend on each other in one direction only: a module
//! that uses another is never used by it, directly or through others, and no module uses an item of the crate
//! root (`lib.rs` or `main.rs` declares every module, so that would close a loop too). Read from the source text:
//! every `crate::…` path (grouped imports included) and every `super::…` at the top level of a top-level file.
//!
//! The nodes are the top-level modules of `src/`: each file `src/x.rs`, and each directory module (`src/x/mod.rs`,
//! or `src/x.rs` with its submodules in `src/x/`) as one node `x`. The files inside a directory module count only
//! through their `crate::` paths, which are the directory module's own; how its submodules use each other stays
//! inside the node.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate root, as a node of the graph.
const ROOT: &str = "root";

/// The first path segments of `crate::` paths in `text` (`crate::{a::X, b}` gives a and b), and, when
/// `top_level` (a top-level file of `src/`), `ROOT` for a `super::` path at the top level of the file (there the
/// parent is the root; inside an inline `mod tests`, indented, it is the file itself). Whole-line comments are
/// skipped.
fn referenced(text: &str, top_level: bool) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        if top_level
            && (line.starts_with("super::") || line.starts_with("use super::") || line.starts_with("pub use super::"))
        {
            names.insert(ROOT.to_string());
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                names.extend(group[..end].split(',').filter_map(|path| first_segment(path.trim())));
            } else {
                names.extend(first_segment(rest));
            }
        }
    }
    names
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// Every `.rs` file under `dir`, at any depth, in a fixed order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The module graph of the crate whose sources are `src`: each top-level module and the modules it uses
/// (`ROOT` for a root item).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let roots: Vec<&str> = ["lib.rs", "main.rs"].into_iter().filter(|r| src.join(r).is_file()).collect();
    assert_eq!(roots.len(), 1, "{} should hold exactly one crate root, lib.rs or main.rs: {roots:?}", src.display());
    let root_file = roots[0];
    // Each node's texts, with whether each is a top-level file (whose `super::` is the root).
    let mut modules: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(src).unwrap().map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            // A directory is a module when it holds `mod.rs` or sits beside `name.rs`; otherwise it is no module.
            let is_module = path.join("mod.rs").is_file() || src.join(format!("{name}.rs")).is_file();
            if is_module {
                let texts = rust_files(&path).into_iter().map(|file| (read(&file), false));
                modules.entry(name).or_default().extend(texts);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().unwrap() != root_file {
            modules.entry(name).or_default().push((read(&path), true));
        }
    }
    let mut graph = BTreeMap::new();
    // The root declares (and so depends on) every module.
    graph.insert(ROOT.to_string(), modules.keys().cloned().collect());
    for (name, texts) in &modules {
        let uses: BTreeSet<String> = texts
            .iter()
            .flat_map(|(text, top_level)| referenced(text, *top_level))
            .map(|used| if modules.contains_key(&used) { used } else { ROOT.to_string() })
            .filter(|used| used != name)
            .collect();
        graph.insert(name.clone(), uses);
    }
    graph
}

/// A cycle of `graph`, as the modules along it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// The `src/` folders of every crate of the workspace: each `crates/*/src`, and xtask's own.
fn source_folders() -> Vec<PathBuf> {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crates = xtask.join("../crates");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", crates.display()))
        .map(|entry| entry.unwrap().path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    folders.sort();
    folders.push(xtask.join("src"));
    folders
}

#[test]
fn no_crate_has_a_module_cycle() {
    let folders = source_folders();
    let mut loops = Vec::new();
    for src in &folders {
        let graph = graph(src);
        if let Some(cycle) = cycle(&graph) {
            loops.push(format!("{}: {}", src.display(), cycle.join(" → ")));
        }
    }
    // The sources are read at all: the report's top modules use the ones below them; a directory module is one
    // node (`sources/mod.rs`, and `conv.rs` with `conv/passes.rs`); xtask's own modules are among those checked.
    let graph_of = |folder: &str| graph(folders.iter().find(|f| f.ends_with(folder)).expect(folder));
    let reporting = graph_of("crates/reporting/src");
    assert!(reporting["claims"].contains("aggregate") && reporting["tables"].contains("latex"), "{reporting:?}");
    let datasets = graph_of("crates/datasets/src");
    assert!(datasets.contains_key("sources") && !datasets.contains_key("mod"), "{datasets:?}");
    let kernels = graph_of("crates/kernels/src");
    assert!(kernels["conv"].contains("matmul") && !kernels.contains_key("passes"), "{kernels:?}");
    let xtask = graph_of("xtask/src");
    assert!(xtask["reproduce"].contains("slurm") && xtask[ROOT].contains("reproduce"), "{xtask:?}");
    assert!(loops.is_empty(), "modules that use each other in a loop:\n{}", loops.join("\n"));
}

#[test]
fn the_reader_finds_grouped_and_root_paths_and_the_check_finds_loops() {
    let text = "use crate::{aggregate::Stat, error};\n// crate::commented\nfn f() { crate::tables::write(); }\n\
                use super::ReportInputs;\nmod tests {\n    use super::*;\n}\n";
    let names: Vec<String> = referenced(text, true).into_iter().collect();
    assert_eq!(names, ["aggregate", "error", ROOT, "tables"]);
    // Inside a directory module, `super::` is the directory module itself, not the root.
    let names: Vec<String> = referenced(text, false).into_iter().collect();
    assert_eq!(names, ["aggregate", "error", "tables"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph.entry(from.to_string()).or_default().insert(to.to_string());
        }
        graph
    };
    assert_eq!(cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    let found = cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap();
    assert_eq!(found, ["a", "b", "c", "a"]);
}

#[test]
fn a_binary_root_and_directory_modules_are_read_as_top_level_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("main.rs", "mod a;\nmod b;\nmod c;\nfn shared() {}\n");
    write("a.rs", "use crate::b::Sample;\n");
    // `b.rs` with its submodule in `b/`: the submodule's `super::` is `b`, its `crate::` root item closes a loop.
    write("b.rs", "mod inner;\n");
    write("b/inner.rs", "use super::Sample;\nfn f() { crate::shared(); }\n");
    // `c/mod.rs`, using a sibling through a grouped path.
    write("c/mod.rs", "mod deeper;\n");
    write("c/deeper.rs", "use crate::{a, b::Sample};\n");
    let graph = graph(src);
    let node = |name: &str| graph[name].iter().map(String::as_str).collect::<Vec<_>>();
    assert_eq!(graph.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b", "c", ROOT]);
    assert_eq!(node(ROOT), ["a", "b", "c"]);
    assert_eq!(node("a"), ["b"]);
    assert_eq!(node("b"), [ROOT]);
    assert_eq!(node("c"), ["a", "b"]);
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", ROOT, "a"]);
}
