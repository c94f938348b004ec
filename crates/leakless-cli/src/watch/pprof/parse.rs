//! Go's goroutine profile as text, parsed without Go: `goroutine?debug=2`
//! (every goroutine, its state and stack, `created by`, and the ancestors
//! GODEBUG=tracebackancestors records) and `goroutine?debug=1` (stacks
//! grouped and counted, with their pprof labels).
//!
//! Functions, states and the shape of the text are what is matched, never
//! line numbers or offsets, which change between Go releases. Both
//! `created by X` (Go 1.20 and older) and `created by X in goroutine N`
//! (1.21 and newer) are read, and a header with fields before the state
//! (`goroutine 1 gp=0x... m=0 [running]:`) is tolerated. Lines that fit no
//! shape are skipped: a dump is evidence, not a contract.

use std::collections::BTreeMap;

/// One stack frame: the function (without its arguments) and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub func: String,
    pub file: String,
    pub line: u32,
}

impl Frame {
    /// The file's last path element and the line: `main.go:53`.
    pub fn place(&self) -> String {
        let file = self.file.rsplit('/').next().unwrap_or(&self.file);
        format!("{file}:{}", self.line)
    }

    /// Whether the function is outside Go's standard library: package
    /// `main`, or an import path whose first element has a dot
    /// (`github.com/...`, `golang.org/x/...`).
    pub fn is_user(&self) -> bool {
        let path = package_of(&self.func);
        path == "main"
            || path.ends_with(".test")
            || path
                .split('/')
                .next()
                .is_some_and(|first| first.contains('.'))
    }
}

/// The import path of a function: `net/http` of
/// `net/http.(*persistConn).readLoop`, `main` of `main.main.func1`.
fn package_of(func: &str) -> &str {
    let (dir, last) = match func.rfind('/') {
        Some(i) => (&func[..i + 1], &func[i + 1..]),
        None => ("", func),
    };
    let pkg_end = last.find('.').unwrap_or(last.len());
    &func[..dir.len() + pkg_end]
}

/// A goroutine's ancestor (GODEBUG=tracebackancestors=N): the goroutine
/// that created it, as it was then.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ancestor {
    pub id: u64,
    pub frames: Vec<Frame>,
    pub created_by: Option<Frame>,
}

/// One goroutine of a `debug=2` dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Goroutine {
    pub id: u64,
    /// `select`, `IO wait`, `chan receive`, ...
    pub state: String,
    /// How long it has been blocked, when Go says (whole minutes, only
    /// past one and only once a GC has noticed).
    pub wait_minutes: Option<u32>,
    /// Innermost first.
    pub frames: Vec<Frame>,
    pub created_by: Option<Frame>,
    /// `created by X in goroutine N` (Go 1.21 and newer).
    pub creator: Option<u64>,
    pub ancestors: Vec<Ancestor>,
}

impl Goroutine {
    #[cfg(test)]
    pub fn has(&self, func: &str) -> bool {
        self.frames.iter().any(|f| f.func == func)
    }
}

/// Parses a `goroutine?debug=2` dump.
pub fn goroutines(text: &str) -> Vec<Goroutine> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(mut g) = header(line) else {
            continue;
        };
        // Frames until a blank line or the next header.
        let mut frames: Vec<Frame> = Vec::new();
        let mut created: Option<(Frame, Option<u64>)> = None;
        let mut ancestor: Option<Ancestor> = None;
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || header(next).is_some() {
                break;
            }
            let line = lines.next().unwrap_or_default();
            if let Some(id) = originating(line) {
                // The goroutine's own part ends; ancestors follow.
                match ancestor.take() {
                    Some(a) => g.ancestors.push(a),
                    None => {
                        g.frames = std::mem::take(&mut frames);
                        if let Some((f, c)) = created.take() {
                            g.created_by = Some(f);
                            g.creator = c;
                        }
                    }
                }
                ancestor = Some(Ancestor {
                    id,
                    ..Ancestor::default()
                });
                continue;
            }
            let (func, creator, is_created) = match line.strip_prefix("created by ") {
                Some(rest) => {
                    let (func, creator) = created_by(rest);
                    (func, creator, true)
                }
                None => match function(line) {
                    Some(f) => (f, None, false),
                    None => continue,
                },
            };
            let (file, line_no) = lines.peek().and_then(|l| location(l)).unwrap_or_default();
            if !file.is_empty() {
                lines.next();
            }
            let frame = Frame {
                func,
                file,
                line: line_no,
            };
            match (&mut ancestor, is_created) {
                (Some(a), true) => a.created_by = Some(frame),
                (Some(a), false) => a.frames.push(frame),
                (None, true) => created = Some((frame, creator)),
                (None, false) => frames.push(frame),
            }
        }
        match ancestor {
            Some(a) => g.ancestors.push(a),
            None => {
                g.frames = frames;
                if let Some((f, c)) = created {
                    g.created_by = Some(f);
                    g.creator = c;
                }
            }
        }
        out.push(g);
    }
    out
}

/// `goroutine 26 [select, 2 minutes, locked to thread]:`, tolerating
/// fields between the id and the state.
fn header(line: &str) -> Option<Goroutine> {
    let rest = line.strip_prefix("goroutine ")?;
    let rest = rest.strip_suffix(':')?;
    let (id, rest) = rest.split_once(' ')?;
    let id: u64 = id.parse().ok()?;
    let open = rest.find('[')?;
    let inner = rest[open + 1..].strip_suffix(']')?;
    let mut parts = inner.split(", ");
    let state = parts.next()?.to_string();
    let mut wait_minutes = None;
    for p in parts {
        if let Some(n) = p
            .strip_suffix(" minutes")
            .or_else(|| p.strip_suffix(" minute"))
        {
            wait_minutes = n.parse().ok();
        }
    }
    Some(Goroutine {
        id,
        state,
        wait_minutes,
        ..Goroutine::default()
    })
}

/// `[originating from goroutine 24]:`
fn originating(line: &str) -> Option<u64> {
    line.strip_prefix("[originating from goroutine ")?
        .strip_suffix("]:")?
        .parse()
        .ok()
}

/// `net/http.(*Transport).dialConn in goroutine 24` or without the suffix.
fn created_by(rest: &str) -> (String, Option<u64>) {
    match rest.rsplit_once(" in goroutine ") {
        Some((func, id)) => match id.trim().parse() {
            Ok(id) => (func.trim().to_string(), Some(id)),
            Err(_) => (rest.trim().to_string(), None),
        },
        None => (rest.trim().to_string(), None),
    }
}

/// A frame's function line, arguments stripped:
/// `net/http.(*persistConn).readLoop(0xc00009eb40)` -> the name.
fn function(line: &str) -> Option<String> {
    if line.starts_with('\t') || line.starts_with(' ') || line.starts_with("...") {
        return None;
    }
    let line = line.trim_end();
    if !line.ends_with(')') {
        return None;
    }
    // The argument list is the last balanced (...) of the line; the name
    // itself may hold parentheses: `(*T).Method`.
    let mut depth = 0usize;
    for (i, c) in line.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    let name = &line[..i];
                    return (!name.is_empty()).then(|| name.to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// `\t/usr/lib/go/src/net/http/transport.go:2213 +0xd85` -> (file, line).
fn location(line: &str) -> Option<(String, u32)> {
    let line = line.strip_prefix('\t')?;
    let path = line.split(" +0x").next()?.trim_end();
    let (file, no) = path.rsplit_once(':')?;
    Some((file.to_string(), no.parse().ok()?))
}

/// One stack of a `debug=1` dump: how many goroutines share it, their
/// pprof labels, and its functions (innermost first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub count: u32,
    pub labels: BTreeMap<String, String>,
    pub funcs: Vec<String>,
}

/// Parses a `goroutine?debug=1` dump.
pub fn groups(text: &str) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for line in text.lines() {
        if let Some((count, _)) = line.split_once(" @ ") {
            if let Ok(count) = count.trim().parse() {
                out.push(Group {
                    count,
                    ..Group::default()
                });
            }
            continue;
        }
        let Some(g) = out.last_mut() else {
            continue;
        };
        if let Some(l) = line.strip_prefix("# labels: ") {
            g.labels = labels(l);
        } else if let Some(frame) = line.strip_prefix("#\t") {
            // `0x66c1c4\tnet/http.(*persistConn).readLoop+0xd84\tfile:line`
            let mut fields = frame.split('\t').filter(|f| !f.is_empty());
            let _pc = fields.next();
            if let Some(func) = fields.next() {
                let name = func.rsplit_once("+0x").map_or(func, |(n, _)| n);
                g.funcs.push(name.trim().to_string());
            }
        }
    }
    out
}

/// `{"callsite":"fetchUser", "tenant":"a b"}` -> pairs. Keys and values are
/// Go-quoted strings; escapes beyond `\"` and `\\` are kept as written.
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut strings = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        if n != '"' && n != '\\' {
                            s.push('\\');
                        }
                        s.push(n);
                    }
                }
                '"' => break,
                c => s.push(c),
            }
        }
        strings.push(s);
    }
    strings
        .chunks_exact(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
