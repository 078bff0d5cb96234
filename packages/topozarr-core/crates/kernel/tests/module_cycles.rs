//! Fails when the modules of a crate of this workspace use each other in a cycle. An edge `a -> b`
//! is a `crate::b` path in the code of `a.rs` outside comments and outside its `#[cfg(test)]`
//! module (tests may use the entry points above them). Every crate here keeps its modules as
//! flat files under `src/`, so a module is a file stem.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The code of a module, without comments and without its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module names that follow `crate::` in `code` (`$crate::` in macros included).
fn used(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

fn graph_of(src: &Path) -> Graph {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(src).expect("src dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            modules.insert(name, code(&fs::read_to_string(&path).expect("read")));
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .into_iter()
        .map(|(name, code)| {
            let deps = used(&code)
                .into_iter()
                .filter(|d| names.contains(d) && *d != name)
                .collect();
            (name, deps)
        })
        .collect()
}

/// One cycle of `g` as a path `a -> ... -> a`, if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    // 0: unvisited, 1: on the current path, 2: done.
    fn visit(
        n: &str,
        g: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == d).expect("on path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(d, g, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_crate_of_the_workspace_has_a_module_cycle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in fs::read_dir(&crates).expect("crates dir") {
        let src = entry.expect("entry").path().join("src");
        if src.is_dir() {
            let g = graph_of(&src);
            assert!(g.len() > 1, "no modules found in {}", src.display());
            if let Some(c) = find_cycle(&g) {
                panic!("module cycle in {}: {}", src.display(), c.join(" -> "));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3, "expected the kernel, io and bindings crates");
}

#[test]
fn the_check_sees_a_cycle_through_use_and_paths_but_not_comments_or_tests() {
    let dir = std::env::temp_dir().join(format!("topozarr-cycles-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a.rs"), "use crate::b::X;\n").unwrap();
    fs::write(dir.join("b.rs"), "fn f() { crate::c::g() }\n").unwrap();
    fs::write(
        dir.join("c.rs"),
        "// crate::a\n#[cfg(test)]\nuse crate::a;\n",
    )
    .unwrap();
    assert_eq!(find_cycle(&graph_of(&dir)), None);
    fs::write(dir.join("c.rs"), "pub fn g() { $crate::a::h() }\n").unwrap();
    let cycle = find_cycle(&graph_of(&dir)).expect("a cycle");
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(cycle, ["a", "b", "c", "a"]);
}
