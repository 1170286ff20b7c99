//! The modules of `src/` depend on each other in one direction only: a file that uses another is never used by
//! it, directly or through others, and no module uses an item of the crate root (`lib.rs` declares every module,
//! so that would close a loop too). Read from the source text: every `crate::…` path (grouped imports included)
//! and every `super::…` at the top level of a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The root, as a node of the graph.
const ROOT: &str = "lib";

/// The first path segments of `crate::` paths in `text` (`crate::{a::X, b}` gives a and b), and `ROOT` for a
/// `super::` path at the top level of a file (in a file module, the parent is the root; inside an inline `mod
/// tests`, indented, it is the file itself). Whole-line comments are skipped.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        if line.starts_with("super::") || line.starts_with("use super::") || line.starts_with("pub use super::") {
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

/// The module graph of `src/`: each file's module and the modules it uses (`ROOT` for a root item).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            modules.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut graph = BTreeMap::new();
    for (name, text) in &modules {
        let uses: BTreeSet<String> = if name == ROOT {
            // The root declares (and so depends on) every module.
            modules.keys().filter(|m| *m != ROOT).cloned().collect()
        } else {
            referenced(text)
                .into_iter()
                .map(|used| if modules.contains_key(&used) { used } else { ROOT.to_string() })
                .filter(|used| used != name)
                .collect()
        };
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

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The graph is read at all: the report's top modules use the ones below them.
    assert!(graph["claims"].contains("aggregate") && graph["tables"].contains("latex"), "{graph:?}");
    if let Some(cycle) = cycle(&graph) {
        panic!("modules of src/ that use each other in a loop: {}", cycle.join(" → "));
    }
}

#[test]
fn the_reader_finds_grouped_and_root_paths_and_the_check_finds_loops() {
    let text = "use crate::{aggregate::Stat, error};\n// crate::commented\nfn f() { crate::tables::write(); }\n\
                use super::ReportInputs;\nmod tests {\n    use super::*;\n}\n";
    let names: Vec<String> = referenced(text).into_iter().collect();
    assert_eq!(names, ["aggregate", "error", ROOT, "tables"]);
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
