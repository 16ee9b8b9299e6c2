//! One way through the house: the modules of `src/` import one another
//! without a circle, and each layer only reaches down (api → booking →
//! commands / event store → aggregates / projections). Read from the source
//! text: every `crate::<module>` outside comments and test modules is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every layer above the read models.
const ABOVE_PROJECTIONS: &[&str] = &[
    "event_store",
    "commands",
    "booking",
    "state",
    "api",
    "scheduler",
    "server",
];

/// Modules that must not import the ones listed with them (a module may
/// have several lists).
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("aggregates", &["projections"]),
    ("aggregates", ABOVE_PROJECTIONS),
    // Batching knows only jobs and streams: the pipelines and the queue's
    // entry planner both build on it.
    ("batching", &["aggregates", "projections"]),
    ("batching", ABOVE_PROJECTIONS),
    ("projections", ABOVE_PROJECTIONS),
    (
        "event_store",
        &["commands", "booking", "state", "api", "scheduler", "server"],
    ),
    (
        "commands",
        &["booking", "state", "api", "scheduler", "server"],
    ),
    ("booking", &["api", "scheduler", "server"]),
    ("state", &["api", "booking", "scheduler", "server"]),
    ("scheduler", &["api", "server"]),
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Top-level module → the top-level modules it names with `crate::`.
fn import_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        // The binaries stand above the library; lib.rs only lists the modules.
        if first == "bin" || first == "main.rs" || first == "lib.rs" {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for line in code
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
        {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    edges.insert(name);
                }
            }
        }
    }
    graph
}

/// A circle through `start`, if any: the modules on it in order.
fn circle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &Graph,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = import_graph();
    assert!(
        graph.contains_key("api") && graph.contains_key("booking"),
        "{graph:?}"
    );
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|module| circle_from(&graph, module))
        .map(|circle| format!("{} → {}", circle.join(" → "), circle[0]))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn each_layer_only_reaches_down() {
    let graph = import_graph();
    let mut wrong = Vec::new();
    for (module, forbidden) in FORBIDDEN {
        let imports = graph
            .get(*module)
            .unwrap_or_else(|| panic!("no module {module}"));
        for name in *forbidden {
            if imports.contains(*name) {
                wrong.push(format!("{module} imports {name}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    graph.entry("d".into()).or_default().insert("a".into());
    assert_eq!(
        circle_from(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(circle_from(&graph, "d"), None);
}
