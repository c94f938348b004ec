//! The library's shape, checked on every `cargo test`: dependencies point
//! one way. Each source file belongs to a layer (`LAYERS`, bottom first); a
//! file may use its own module's parent and children, and anything in its
//! layer or below, never above. No files may use each other in a circle,
//! and no source file may pass `MAX_LINES`.
//!
//! What counts as a use: every `crate::`, `super::` and `self::` path and
//! every `use` declaration, with paths through a module alias (`use
//! crate::pool; pool::dial(..)`) and re-exports (`pub use`) followed to the
//! file that defines the item. Comments and inline `mod tests { .. }` are
//! skipped.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Bottom first. A path ending in `/` takes every file under it; the
/// longest match wins (`body/response.rs` over `body/`).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "vocabulary",
        &[
            "attempt.rs",
            "body/mod.rs",
            "body/request.rs",
            "config/",
            "dns.rs",
            "error.rs",
            "cookie.rs",
            "multipart.rs",
            "phase.rs",
            "redirect.rs",
            "route.rs",
            "stats.rs",
            "trace.rs",
        ],
    ),
    ("connect", &["connect/"]),
    ("protocols", &["http1/", "http2/"]),
    ("pool", &["pool/"]),
    (
        "response",
        &[
            "body/decode.rs",
            "body/drain.rs",
            "body/response.rs",
            "exchange.rs",
            "response.rs",
        ],
    ),
    ("policy", &["policy/"]),
    (
        "façade",
        &[
            "client/",
            "lib.rs",
            "__private.rs",
            "fuzzing.rs",
            "layers.rs",
        ],
    ),
];

/// Compiled only for tests, so free to use anything (the property tests
/// drive the engine through the fuzzing harness).
const TEST_ONLY: &[&str] = &["http1/proptests.rs", "layers.rs"];

const MAX_LINES: usize = 600;

#[test]
fn dependencies_point_one_way_and_never_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crate_ = Crate::read(&src);
    let mut wrong = Vec::new();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (file, used) in &crate_.uses {
        if TEST_ONLY.contains(&file.as_str()) {
            continue;
        }
        let from = layer(file);
        for target in used {
            let to = layer(target);
            if to.0 > from.0 {
                wrong.push(format!(
                    "{file} ({}) uses {target} ({}), a layer above it",
                    from.1, to.1
                ));
            }
            graph.entry(file).or_default().insert(target);
        }
    }
    if std::env::var_os("LEAKLESS_PRINT_LAYERS").is_some() {
        for (file, used) in &graph {
            println!("{file} ({}) -> {used:?}", layer(file).1);
        }
    }
    for circle in circles(&graph) {
        wrong.push(format!(
            "these files use each other in a circle: {circle:?}"
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    for dir in ["src", "benches", "examples"] {
        for (file, text) in rust_files(&root.join(dir)) {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                long.push(format!("{dir}/{file}: {lines} lines"));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_checker_sees_uses_through_aliases_and_re_exports() {
    let crate_ = Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let uses = |f: &str| crate_.uses[f].iter().cloned().collect::<Vec<_>>();
    // `use crate::{.., http2, ..}` then `http2::send(..)`, re-exported by
    // http2/mod.rs from http2/send.rs.
    assert!(uses("exchange.rs").contains(&"http2/send.rs".to_owned()));
    // `crate::body::Body` is re-exported by body/mod.rs from body/request.rs.
    assert!(uses("http1/encode.rs").contains(&"body/request.rs".to_owned()));
    // Its own parent is not counted.
    assert!(!uses("pool/dial.rs").contains(&"pool/mod.rs".to_owned()));
}

/// The layer of a file: (rank, name).
fn layer(file: &str) -> (usize, &'static str) {
    let mut best: Option<(usize, usize, &'static str)> = None;
    for (rank, (name, paths)) in LAYERS.iter().enumerate() {
        for p in *paths {
            let hit = if p.ends_with('/') {
                file.starts_with(p)
            } else {
                file == *p
            };
            if hit && best.is_none_or(|(len, ..)| p.len() > len) {
                best = Some((p.len(), rank, name));
            }
        }
    }
    match best {
        Some((_, rank, name)) => (rank, name),
        None => panic!("{file} is in no layer: add it to LAYERS in src/layers.rs"),
    }
}

/// Every `.rs` file under `dir`, by path relative to it.
fn rust_files(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("readable source tree") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&path).expect("utf-8 source"));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

type ModPath = Vec<String>;

/// One `use` binding: `name` in its file stands for `path`.
#[derive(Debug)]
struct Binding {
    name: String,
    path: ModPath,
}

struct Crate {
    /// Module path → its file.
    modules: BTreeMap<ModPath, String>,
    /// File → its `use` bindings.
    bindings: BTreeMap<String, Vec<Binding>>,
    /// File → the files whose items it uses (parents and children aside).
    uses: BTreeMap<String, BTreeSet<String>>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let files = rust_files(src);
        let modules: BTreeMap<ModPath, String> =
            files.keys().map(|f| (module_of(f), f.clone())).collect();
        let tokens: BTreeMap<&String, Vec<String>> =
            files.iter().map(|(f, text)| (f, tokens(text))).collect();
        let mut crate_ = Crate {
            bindings: BTreeMap::new(),
            uses: BTreeMap::new(),
            modules,
        };
        let mut paths = BTreeMap::new();
        for (file, toks) in &tokens {
            let (bindings, found) = crate_.paths(file, toks);
            crate_.bindings.insert((*file).clone(), bindings);
            paths.insert((*file).clone(), found);
        }
        for (file, found) in paths {
            let here = module_of(&file);
            let mut used = BTreeSet::new();
            for (path, in_code) in found {
                let Some((target, is_module)) = crate_.resolve(&path, 0) else {
                    continue;
                };
                let there = module_of(&target);
                // A module imported by `use` counts where its items are used
                // (in code, `pool::dial` names the function, not the module).
                let kin = there.starts_with(&here) || here.starts_with(&there);
                if (in_code || !is_module) && !kin {
                    used.insert(target);
                }
            }
            crate_.uses.insert(file, used);
        }
        crate_
    }

    /// The `use` bindings of a file, and every crate path it mentions
    /// (absolute, through those bindings; `true` for paths in code rather
    /// than in `use` declarations).
    fn paths(&self, file: &str, toks: &[String]) -> (Vec<Binding>, Vec<(ModPath, bool)>) {
        let here = module_of(file);
        let mut bindings = Vec::new();
        let mut in_use = vec![false; toks.len()];
        let mut i = 0;
        while i < toks.len() {
            if toks[i] == "use" {
                let mut j = i + 1;
                let mut out = Vec::new();
                tree(toks, &mut j, Vec::new(), &mut out);
                for (path, name) in out {
                    if let Some(abs) = self.absolute(&here, &path, &[]) {
                        bindings.push(Binding { name, path: abs });
                    }
                }
                in_use[i..j.min(toks.len())].fill(true);
                i = j;
            } else {
                i += 1;
            }
        }
        let mut found: Vec<(ModPath, bool)> =
            bindings.iter().map(|b| (b.path.clone(), false)).collect();
        let mut i = 0;
        while i < toks.len() {
            let starts = !in_use[i]
                && is_ident(&toks[i])
                && toks.get(i + 1).is_some_and(|t| t == "::")
                && (i == 0 || toks[i - 1] != "::");
            if starts {
                let mut j = i;
                let mut path = vec![toks[j].clone()];
                while toks.get(j + 1).is_some_and(|t| t == "::")
                    && toks.get(j + 2).is_some_and(|t| is_ident(t))
                {
                    path.push(toks[j + 2].clone());
                    j += 2;
                }
                if let Some(abs) = self.absolute(&here, &path, &bindings) {
                    found.push((abs, true));
                }
                i = j + 1;
            } else {
                i += 1;
            }
        }
        (bindings, found)
    }

    /// A path as written in module `here` → absolute, or `None` if it
    /// leaves the crate.
    fn absolute(&self, here: &ModPath, path: &[String], bindings: &[Binding]) -> Option<ModPath> {
        let (first, rest) = path.split_first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => here.clone(),
            "super" => here[..here.len().checked_sub(1)?].to_vec(),
            name => {
                if let Some(b) = bindings.iter().find(|b| b.name == name) {
                    b.path.clone()
                } else {
                    let mut child = here.clone();
                    child.push(name.to_owned());
                    if !self.modules.contains_key(&child) {
                        return None;
                    }
                    child
                }
            }
        };
        let mut rest = rest;
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what `path` names, and whether it names a
    /// module rather than an item in one.
    fn resolve(&self, path: &ModPath, depth: usize) -> Option<(String, bool)> {
        if depth > 8 {
            return None;
        }
        let mut module = Vec::new();
        let mut i = 0;
        while i < path.len() && {
            let mut next = module.clone();
            next.push(path[i].clone());
            self.modules.contains_key(&next)
        } {
            module.push(path[i].clone());
            i += 1;
        }
        let file = self.modules.get(&module)?;
        if i == path.len() {
            return Some((file.clone(), true));
        }
        let name = &path[i];
        let via = self
            .bindings
            .get(file)
            .and_then(|bs| bs.iter().find(|b| &b.name == name));
        match via {
            Some(b) if b.path != *path => {
                let mut further = b.path.clone();
                further.extend(path[i + 1..].iter().cloned());
                self.resolve(&further, depth + 1)
            }
            _ => Some((file.clone(), false)),
        }
    }
}

/// `pool/mod.rs` → `pool`; `pool/dial.rs` → `pool::dial`; `lib.rs` → root.
fn module_of(file: &str) -> ModPath {
    let file = file.strip_suffix(".rs").expect("a .rs file");
    let mut parts: ModPath = file.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Parses a use tree at `toks[*i]`, appending (path, bound name) pairs.
fn tree(toks: &[String], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<(ModPath, String)>) {
    loop {
        let Some(t) = toks.get(*i) else { return };
        match t.as_str() {
            "{" => {
                *i += 1;
                while toks.get(*i).is_some_and(|t| t != "}") {
                    tree(toks, i, prefix.clone(), out);
                    if toks.get(*i).is_some_and(|t| t == ",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                return;
            }
            "self" if !prefix.is_empty() => {
                *i += 1;
                let name = alias(toks, i).unwrap_or_else(|| prefix.last().cloned().unwrap());
                out.push((prefix, name));
                return;
            }
            t if is_ident(t) => {
                prefix.push(t.to_owned());
                *i += 1;
                if toks.get(*i).is_some_and(|t| t == "::") {
                    *i += 1;
                    continue;
                }
                let name = alias(toks, i).unwrap_or_else(|| prefix.last().cloned().unwrap());
                out.push((prefix, name));
                return;
            }
            _ => return,
        }
    }
}

/// `as name`, if there.
fn alias(toks: &[String], i: &mut usize) -> Option<String> {
    if toks.get(*i).is_some_and(|t| t == "as") {
        *i += 2;
        return toks.get(*i - 1).cloned();
    }
    None
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers and punctuation, without comments, literals or inline
/// `mod name { .. }` blocks (tests).
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !prev_ident(&chars, i) {
            // A raw string: r"..", r#".."#.
            let mut hashes = 0;
            i += 1;
            while chars.get(i) == Some(&'#') {
                hashes += 1;
                i += 1;
            }
            if chars.get(i) != Some(&'"') {
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n'), else a lifetime.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && next == Some(':') {
            out.push("::".to_owned());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    skip_inline_modules(out)
}

fn prev_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn skip_inline_modules(toks: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == "mod" && toks.get(i + 2).is_some_and(|t| t == "{") {
            let mut depth = 0;
            i += 2;
            while i < toks.len() {
                match toks[i].as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}

/// Groups of files that use each other, directly or through others.
fn circles<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> BTreeSet<Vec<&'a str>> {
    let reach = |from: &'a str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(v) = todo.pop() {
            for &w in graph.get(v).into_iter().flatten() {
                if seen.insert(w) {
                    todo.push(w);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&str, BTreeSet<&str>> = graph.keys().map(|&v| (v, reach(v))).collect();
    let both =
        |v: &str, w: &str| reach[v].contains(w) && reach.get(w).is_some_and(|r| r.contains(v));
    graph
        .keys()
        .map(|&v| {
            reach[v]
                .iter()
                .copied()
                .filter(|&w| both(v, w))
                .collect::<Vec<_>>()
        })
        .filter(|group| group.len() > 1)
        .collect()
}
