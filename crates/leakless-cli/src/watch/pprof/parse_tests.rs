//! The parser on dumps captured from Debian's Go 1.19 (`tests/watch/go/leaky.go`
//! in each mode, see `testdata/`), and on an edited copy in the newer
//! formats (`created by X in goroutine N`, minutes, `locked to thread`).

use super::*;

const BODY2: &str = include_str!("testdata/body.debug2.txt");
const BODY1: &str = include_str!("testdata/body.debug1.txt");
const BODY2_NEW: &str = include_str!("testdata/body.go121-edited.debug2.txt");
const HANDLER2: &str = include_str!("testdata/handler.debug2.txt");

#[test]
fn reads_every_goroutine_with_state_and_stack() {
    let gs = goroutines(BODY2);
    assert_eq!(gs.len(), 47, "the dump's header says total 47 in debug=1");
    let main = gs.iter().find(|g| g.id == 1).unwrap();
    assert_eq!(main.state, "select (no cases)");
    assert_eq!(main.frames[0].func, "main.main");
    let read_loops: Vec<&Goroutine> = gs
        .iter()
        .filter(|g| g.has("net/http.(*persistConn).readLoop"))
        .collect();
    assert_eq!(read_loops.len(), 20);
    let g = read_loops[0];
    assert_eq!(g.state, "select");
    assert_eq!(g.wait_minutes, None);
    assert_eq!(g.frames.len(), 1);
    assert!(g.frames[0].file.ends_with("net/http/transport.go"));
    assert!(g.frames[0].line > 0);
    assert_eq!(
        g.created_by.as_ref().unwrap().func,
        "net/http.(*Transport).dialConn"
    );
    assert_eq!(g.creator, None, "Go 1.19 does not say which goroutine");
}

/// GODEBUG=tracebackancestors=5: the chain back to the code that made the
/// request, through the goroutines that dialed.
#[test]
fn reads_ancestors_back_to_user_code() {
    let gs = goroutines(BODY2);
    let g = gs
        .iter()
        .find(|g| g.has("net/http.(*persistConn).readLoop"))
        .unwrap();
    assert_eq!(g.ancestors.len(), 3, "{:#?}", g.ancestors);
    assert_eq!(
        g.ancestors[0].frames[0].func,
        "net/http.(*Transport).dialConn"
    );
    let user = g
        .ancestors
        .iter()
        .flat_map(|a| &a.frames)
        .find(|f| f.is_user())
        .unwrap();
    assert_eq!(user.func, "main.fetchUser");
    assert!(user.place().starts_with("leaky.go:"), "{}", user.place());
}

#[test]
fn newer_formats_parse_the_same() {
    let old = goroutines(BODY2);
    let new = goroutines(BODY2_NEW);
    assert_eq!(old.len(), new.len());
    for (a, b) in old.iter().zip(&new) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.state, b.state);
        assert_eq!(a.frames, b.frames);
        assert_eq!(a.created_by, b.created_by);
        assert_eq!(a.ancestors, b.ancestors);
    }
    let g = new
        .iter()
        .find(|g| g.has("net/http.(*persistConn).readLoop"))
        .unwrap();
    assert_eq!(g.wait_minutes, Some(3));
    assert!(g.creator.is_some());
    assert_eq!(
        new.iter().find(|g| g.id == 1).unwrap().state,
        "select (no cases)"
    );
}

#[test]
fn odd_headers_and_lines_are_tolerated() {
    let text = "goroutine 7 gp=0xc000007a40 m=nil [chan receive, 1 minute]:\n\
                main.worker(0xc0000a0000, {0x1, 0x2})\n\
                \t/src/app/main.go:12 +0x2a\n\
                ...additional frames elided...\n\
                created by main.main in goroutine 1\n\
                \t/src/app/main.go:30 +0x5d\n\
                \n\
                garbage line\n\
                goroutine 9 [running]:\n\
                \tgoroutine running on other thread; stack unavailable\n";
    let gs = goroutines(text);
    assert_eq!(gs.len(), 2);
    assert_eq!(gs[0].state, "chan receive");
    assert_eq!(gs[0].wait_minutes, Some(1));
    assert_eq!(gs[0].frames[0].func, "main.worker");
    assert_eq!(gs[0].frames[0].place(), "main.go:12");
    assert_eq!(gs[0].creator, Some(1));
    assert!(gs[1].frames.is_empty());
}

#[test]
fn function_names_keep_receivers_and_drop_arguments() {
    assert_eq!(
        function("net/http.(*persistConn).readLoop(0xc00009eb40)").as_deref(),
        Some("net/http.(*persistConn).readLoop")
    );
    assert_eq!(
        function("net/http.HandlerFunc.ServeHTTP(0x0?, {0x7cf820?, 0xc000192000?}, 0x46904e?)")
            .as_deref(),
        Some("net/http.HandlerFunc.ServeHTTP")
    );
    assert_eq!(
        function("main.main.func3(...)").as_deref(),
        Some("main.main.func3")
    );
    assert_eq!(function("\t/usr/lib/go/x.go:1"), None);
}

#[test]
fn user_code_is_told_from_the_standard_library() {
    let f = |func: &str| Frame {
        func: func.to_string(),
        file: String::new(),
        line: 0,
    };
    assert!(f("main.fetchUser").is_user());
    assert!(f("main.main.func3").is_user());
    assert!(f("github.com/acme/api/client.(*C).Get").is_user());
    assert!(f("golang.org/x/net/http2.(*ClientConn).readLoop").is_user());
    assert!(!f("net/http.(*persistConn).readLoop").is_user());
    assert!(!f("runtime/pprof.Do").is_user());
    assert!(!f("internal/poll.runtime_pollWait").is_user());
}

#[test]
fn debug1_groups_carry_counts_and_labels() {
    let gs = groups(BODY1);
    let total: u32 = gs.iter().map(|g| g.count).sum();
    assert_eq!(total, 47);
    let read_loop = gs
        .iter()
        .find(|g| g.funcs == ["net/http.(*persistConn).readLoop"])
        .unwrap();
    assert_eq!(read_loop.count, 20);
    assert_eq!(read_loop.labels["callsite"], "fetchUser");
    assert_eq!(
        labels(r#"{"a":"b \"q\"", "c":"d\\e"}"#),
        BTreeMap::from([
            ("a".to_string(), "b \"q\"".to_string()),
            ("c".to_string(), "d\\e".to_string())
        ])
    );
}

#[test]
fn handlers_show_their_own_frame() {
    let gs = goroutines(HANDLER2);
    let handlers: Vec<&Goroutine> = gs
        .iter()
        .filter(|g| g.has("net/http.serverHandler.ServeHTTP"))
        .filter(|g| g.frames.iter().any(Frame::is_user))
        .collect();
    assert_eq!(handlers.len(), 3);
    assert_eq!(handlers[0].state, "chan receive");
    assert_eq!(handlers[0].frames[0].func, "main.slowHandler");
}
