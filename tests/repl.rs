//! The REPL, driven through a real terminal (tmux) against the test bed: completion of methods
//! and of instance names, multi-line input, tables, Ctrl-C during `sleep` and `execute`,
//! history kept across sessions.

mod common;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Cleanup, Needs, Tmux, script_ok};

/// A running container the REPL tests share.
fn container() -> &'static str {
    static SLOT: OnceLock<(String, Cleanup)> = OnceLock::new();
    common::shared_container(&SLOT, "repl")
}

/// `lxd-script repl` in a terminal of its own, with its history under `state`.
fn repl(state: &Path) -> Tmux {
    let tb = common::testbed();
    let tmux = Tmux::start(
        &format!(
            "env {} XDG_STATE_HOME={} {} repl; echo EXIT=$?; sleep 60",
            tb.env_words(),
            state.display(),
            env!("CARGO_BIN_EXE_lxd-script")
        ),
        120,
        40,
    );
    tmux.wait_for(":default>");
    tmux
}

#[test]
fn tab_completes_methods_and_instance_names() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = container();
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    // A property of the client, from the engine's metadata.
    tmux.type_text("let i = client.inst");
    tmux.press(&["Tab"]);
    tmux.wait_for("let i = client.instances");
    // An instance name inside the string argument, from the live server.
    let (prefix, _) = name.split_at(name.len() - 2);
    tmux.type_text(&format!(".get(\"{prefix}"));
    tmux.press(&["Tab"]);
    tmux.wait_for(&format!("client.instances.get(\"{name}\""));
    tmux.keys(")");
    tmux.wait_for_count(":default>", 2);
    // A method of the variable's type, now known from the scope.
    tmux.type_text("i.sna");
    tmux.press(&["Tab"]);
    tmux.wait_for("i.snapshots");
    tmux.keys("");
    tmux.wait_for(&format!("Snapshots of {name}"));
    // Hints show the signature of the call being typed.
    tmux.type_text("i.execute(");
    let screen = tmux.wait_for("execute(any) -> ExecResult");
    assert!(screen.contains("i.execute("), "{screen}");
}

#[test]
fn multi_line_input_tables_and_results() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = container();
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    tmux.keys("fn twice(x) {");
    tmux.keys("  let y = x * 2;");
    tmux.keys("  y");
    tmux.keys("}");
    tmux.wait_for_count(":default>", 2);
    tmux.keys("twice(2100) + 1");
    tmux.wait_for("4201");
    tmux.keys("client.instances.all()");
    // The row of the test's own container, not just the header: the table may be read while
    // it is still being drawn.
    let screen = tmux.wait_for(name);
    let header = screen
        .lines()
        .find(|l| l.starts_with("NAME"))
        .unwrap_or_default();
    assert!(header.contains("STATUS"), "a table header:\n{screen}");
    let row = screen
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default();
    assert!(row.contains("Running"), "a row per instance:\n{screen}");
    assert_eq!(
        row.find("Running"),
        header.find("STATUS"),
        "aligned columns:\n{screen}"
    );
    tmux.keys(&format!(
        r#"client.instances.get("{name}").execute(["sh", "-c", "echo out-text; echo err-text >&2; exit 3"])"#
    ));
    // Wait for what only the output holds: the typed line holds the streams' text too.
    tmux.wait_for("exit code 3");
    let screen = tmux.wait_for("  err-text");
    assert!(screen.contains("  out-text"), "{screen}");
    tmux.keys("#{name: \"n\", config: #{limits: 2}}");
    let screen = tmux.wait_for("  limits: 2");
    assert!(screen.contains("config:\n  limits: 2"), "a tree:\n{screen}");
    tmux.keys("this is not rhai");
    tmux.wait_for("<repl>:1:");
}

#[test]
fn ctrl_c_cancels_the_entry_and_keeps_the_session() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = container();
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    tmux.keys("let x = 40; sleep(30)");
    std::thread::sleep(Duration::from_millis(500));
    let pressed = Instant::now();
    tmux.press(&["C-c"]);
    tmux.wait_for("interrupted");
    assert!(pressed.elapsed() < Duration::from_secs(5));
    tmux.keys(&format!(
        r#"client.instances.get("{name}").execute(["sleep", "60"])"#
    ));
    std::thread::sleep(Duration::from_millis(1500));
    let pressed = Instant::now();
    tmux.press(&["C-c"]);
    tmux.wait_for_count("interrupted", 2);
    assert!(
        pressed.elapsed() < Duration::from_secs(10),
        "{:?}",
        pressed.elapsed()
    );
    // The command is gone from the container.
    let left = script_ok(&format!(
        r#"print(Client().instances.get("{name}").execute(["sh", "-c", "ps | grep -c '[s]leep 60' || true"]).stdout)"#
    ));
    assert_eq!(left.trim(), "0", "the exec'd command was stopped");
    tmux.keys("print(x + 2)");
    let screen = tmux.wait_for("42");
    assert!(!screen.contains("EXIT="), "the session ended:\n{screen}");
    // A second Ctrl-C at an empty prompt leaves.
    tmux.press(&["C-c"]);
    tmux.wait_for("Ctrl-C again");
    tmux.press(&["C-c"]);
    tmux.wait_for("EXIT=0");
}

#[test]
fn history_is_kept_across_sessions() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    tmux.keys("let remembered = 31337");
    tmux.wait_for_count(":default>", 2);
    tmux.keys(":quit");
    tmux.wait_for("EXIT=0");
    drop(tmux);
    let file = state.path().join("lxd-script/history");
    let saved = std::fs::read_to_string(&file).expect("the history file");
    assert!(saved.contains("let remembered = 31337"), "{saved}");

    let tmux = repl(state.path());
    tmux.press(&["Up"]); // `:quit`
    tmux.press(&["Up"]);
    tmux.wait_for("let remembered = 31337");
    tmux.press(&["C-u"]);
    tmux.keys(":history");
    tmux.wait_for("1  let remembered = 31337");
}

#[test]
fn commands_help_vars_remote_and_project() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    tmux.keys(":help");
    tmux.wait_for(":remote");
    tmux.keys(":help with_project");
    tmux.wait_for("Client.with_project(string) -> Client");
    tmux.keys("let answer = 42");
    tmux.keys(":vars");
    tmux.wait_for("let answer: int = 42");
    tmux.keys(":project no-such-project");
    tmux.wait_for("the server has no project 'no-such-project'");
    tmux.keys(":remote second");
    tmux.wait_for("second:default>");
    tmux.keys("client.endpoint");
    tmux.wait_for("\"https://127.0.0.1:18444\"");
    tmux.keys(":nonsense");
    tmux.wait_for("no command :nonsense");
}

/// A byte that is not UTF-8, typed in the middle of a line, is refused: the session, its
/// variables and the line being typed are kept (the session ended with "invalid data").
#[test]
fn a_byte_that_is_not_utf8_keeps_the_session() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    tmux.keys("let kept = 41;");
    tmux.wait_for_count(":default>", 2);
    tmux.type_text("kept + ");
    tmux.press(&["-H", "ff"]);
    tmux.wait_for("ignored input that is not UTF-8");
    tmux.keys("1");
    tmux.wait_for("42");
    assert!(!tmux.screen().contains("EXIT="), "{}", tmux.screen());
}

/// A long line typed or pasted without bracketed paste is neither coloured nor hinted at every
/// key: 50,000 characters take a few seconds (10,000 took 2.5 s, 100,000 more than three
/// minutes). What remains is the editor's repaint at each wrap of the terminal's row.
#[test]
fn a_long_pasted_line_is_linear() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    let long = format!("\"{}\".len()", "x".repeat(50_000));
    let started = Instant::now();
    for chunk in long.as_bytes().chunks(10_000) {
        tmux.type_text(std::str::from_utf8(chunk).expect("ascii"));
    }
    tmux.press(&["Enter"]);
    tmux.wait_for("50000");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// The one-line banner, the continuation prompt of an incomplete entry, a loop variable
/// completed as what it holds, and `:show` of an object as the tree of its fields.
#[test]
fn banner_continuation_loops_and_show() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let profile = common::unique("show");
    script_ok(&format!(
        r#"Client().profiles.create("{profile}", #{{description: "shown", config: #{{"user.a": "1"}}}});"#
    ));
    let state = tempfile::tempdir().expect("tempdir");
    let tmux = repl(state.path());
    let screen = tmux.wait_for(":help for help");
    let banner = screen.lines().next().unwrap_or_default();
    assert!(banner.starts_with("lxd-script "), "{screen}");
    assert!(
        banner.contains(" at ") && banner.contains("project default."),
        "{banner}"
    );
    assert!(
        banner.contains("is LXD ") || banner.contains("is Incus "),
        "{banner}"
    );
    tmux.keys("fn thrice(x) {");
    tmux.keys("  x * 3");
    let screen = tmux.wait_for("...   x * 3");
    assert!(screen.contains(":default> fn thrice(x) {"), "{screen}");
    tmux.keys("}");
    tmux.keys("thrice(1400)");
    tmux.wait_for("4200");
    tmux.type_text("for x in client.profiles.all() { x.descr");
    tmux.press(&["Tab"]);
    tmux.wait_for("x.description");
    tmux.press(&["C-c"]);
    tmux.keys(&format!(r#":show client.profiles.get("{profile}")"#));
    let screen = tmux.wait_for("user.a: \"1\"");
    assert!(
        screen.contains(&format!("\nProfile {profile}\n")),
        "{screen}"
    );
    assert!(
        screen.contains("\ndescription: \"shown\""),
        "the fields as a tree:\n{screen}"
    );
    assert!(screen.contains("\nconfig:\n  user.a: \"1\""), "{screen}");
    script_ok(&format!(r#"Client().profiles.get("{profile}").delete();"#));
    // :clear leaves only the prompt on the screen.
    tmux.keys(":clear");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let screen = tmux.screen();
        let shown: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        if shown.len() == 1 && shown[0].ends_with(":default>") {
            break;
        }
        assert!(Instant::now() < deadline, "not cleared:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
