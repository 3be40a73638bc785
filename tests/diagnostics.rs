//! Errors that teach: Rhai's own errors in the script's terms (type names, the forms that
//! exist, "did you mean"), pylxd habits, and the chain of calls into functions and modules.

mod common;

use common::{Needs, lxd_script};

/// The uncaught error of `lxd-script eval CODE` (exit status 1 or 2).
fn error_of(code: &str) -> String {
    let run = lxd_script(&["eval", code]);
    assert!(run.code == 1 || run.code == 2, "{run:?}");
    run.stderr.trim_end().to_owned()
}

/// On the scripted types: the forms that exist for a wrong argument type, "did you mean" for
/// a misspelled method or property, and a property called like a method.
#[test]
fn wrong_calls_on_scripted_types_name_what_exists() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    assert_eq!(
        error_of(r#"Client().instances.create("x")"#),
        "<eval>:1:20: Instances.create(string) does not exist; Instances.create takes\n    \
         create(map) -> Instance\n    create(map, bool) -> Instance\n    \
         create(map, map) -> Instance\n    create(map, bool, string) -> Instance"
    );
    assert_eq!(
        error_of("Client().instances.get(5)"),
        "<eval>:1:20: Instances.get(int) does not exist; Instances.get takes\n    \
         get(string) -> Instance"
    );
    assert_eq!(
        error_of(r#"Client().instances.gett("x")"#),
        "<eval>:1:20: Instances has no method 'gett'; did you mean `get`:\n    \
         get(string) -> Instance"
    );
    assert_eq!(
        error_of("let c = Client(); c.instancs"),
        "<eval>:1:21: Client has no property 'instancs'; did you mean `.instances`?"
    );
    assert_eq!(
        error_of("Client().profiles.get(\"default\").name()"),
        "<eval>:1:34: Profile.name is a property, not a method: write `.name` without parentheses"
    );
}

/// Without a server: Rhai's own values, script functions, pylxd habits.
#[test]
fn rhai_errors_are_said_in_the_scripts_terms() {
    assert_eq!(
        error_of("let list = [1]; list.nme"),
        "<eval>:1:22: an array has no property 'nme': take one item (`list[0].nme`) or loop over \
         them (`for x in list { x.nme }`)"
    );
    assert_eq!(
        error_of("let x = 5; x.state()"),
        "<eval>:1:14: state is a method of Instance, Network, not of int"
    );
    assert_eq!(
        error_of("fn f(a, b) { a + b }\nf(1)"),
        "<eval>:2:1: no function f(int), nor a function of the script's own called f with 1 parameter"
    );
    assert_eq!(
        error_of("print(None)"),
        "<eval>:1:7: Variable not found: None (in Rhai, write `()`)"
    );
    assert_eq!(
        error_of("let i = 1;\ni.start(wait=True)"),
        "<eval>:2:13: Expecting ',' to separate the arguments to function call 'start'. Rhai has \
         no keyword arguments: instead of `wait=True`, pass an options map, `#{wait: true}`"
    );
}

/// An error inside an imported module, or in a function, is reported at its own file and
/// line, after the calls that led there from the script.
#[test]
fn errors_in_modules_and_functions_show_the_call_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("mymod.rhai"),
        "fn f(x) {\n    let y = 1;\n    x.nosuch();\n}\n",
    )
    .expect("write");
    let main = dir.path().join("main.rhai");
    std::fs::write(&main, "import \"mymod\" as m;\nm::f(1);\n").expect("write");
    let run = lxd_script(&["run", main.to_str().expect("path")]);
    let shown = main.display();
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "{shown}:2:4 -> mymod.rhai:3:7: no function nosuch(int), nor a function of the \
             script's own called nosuch with 1 parameter"
        )
    );
    let inner = dir.path().join("inner.rhai");
    std::fs::write(
        &inner,
        "fn g(x) {\n  x.nosuch()\n}\nfn h(x) { g(x) }\nh(1);\n",
    )
    .expect("write");
    let run = lxd_script(&["run", inner.to_str().expect("path")]);
    let shown = inner.display();
    assert!(
        run.stderr
            .starts_with(&format!("{shown}:5:1 -> {shown}:4:11 -> {shown}:2:5: ")),
        "{run:?}"
    );
    // Inside the stdlib: its own file, not a line of the 2-line script.
    let run = lxd_script(&["eval", "import \"wait\" as wt;\nwt::ipv4(5, 1);"]);
    assert!(
        run.stderr.starts_with("<eval>:2:5 -> stdlib/wait.rhai:"),
        "{run:?}"
    );
}

/// A project that does not exist is refused when the client connects (LXD would answer every
/// listing in it with nothing), with the projects there are; `with_project` alike.
#[test]
fn a_missing_project_is_refused_on_connect() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let run = lxd_script(&["--project", "nosuch", "eval", "Client().instances.all()"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with("<eval>:1:1: NotFound: project 'nosuch' does not exist on unix:"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("; it has: ") && run.stderr.contains("default"),
        "{run:?}"
    );
    let run = lxd_script(&["eval", r#"Client().with_project("nosuch")"#]);
    assert!(
        run.stderr
            .contains("NotFound: project 'nosuch' does not exist"),
        "{run:?}"
    );
    let fine = lxd_script(&["--project", "default", "eval", "Client().project"]);
    assert_eq!(
        (fine.code, fine.stdout.as_str()),
        (0, "\"default\"\n"),
        "{fine:?}"
    );
}

/// A NotFound names what was missing, in which project, of which remote (LXD says only
/// "Instance not found").
#[test]
fn not_found_names_what_was_missing_and_where() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = common::unique("missing");
    let _cleanup = common::Cleanup::new("main", &[&name]);
    let out = common::script_ok(&format!(
        r#"let c = Client();
           let i = c.instances.create(#{{name: "{name}", source: #{{type: "none"}}}}, true);
           for call in [|| c.instances.get("nope"), || c.profiles.get("nope"),
                        || c.images.get_by_alias("nope"), || c.containers.get("nope"),
                        || i.snapshots.get("nope")] {{
               let e = error_of(call);
               check_eq(e.kind, "NotFound", e.message);
               print(e.message);
           }}"#
    ));
    let place = "not found in project 'default' of remote '";
    let lines: Vec<&str> = out.lines().collect();
    let snapshot = format!("Snapshot '{name}/nope'");
    let expected = [
        "Instance 'nope'",
        "Profile 'nope'",
        "Image alias 'nope'",
        "Instance 'nope'",
        snapshot.as_str(),
    ];
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (line, what) in lines.iter().zip(expected) {
        assert!(line.starts_with(&format!("{what} {place}")), "{out}");
    }
}

/// A Parallel error's message lists each failure readably, `item: Kind: message`, at most ten
/// of them; all are in `e.errors`.
#[test]
fn a_parallel_error_lists_its_failures() {
    let run = lxd_script(&[
        "eval",
        r#"parallel(["a", "b"], |n| throw #{kind: "NotFound", message: `no ${n}`})"#,
    ]);
    assert_eq!(
        run.stderr.trim_end(),
        "<eval>:1:1: Parallel: 2 of 2 calls failed:\n  a: NotFound: no a\n  b: NotFound: no b"
    );
    let run = lxd_script(&[
        "eval",
        "let items = []; for n in 0..12 { items.push(n) } try { parallel(items, |n| throw `bad ${n}`) } catch (e) { print(e.message); print(e.errors.len()) }",
    ]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "12 of 12 calls failed:", "{run:?}");
    assert_eq!(lines[1], "  0: bad 0", "{run:?}");
    assert_eq!(lines[11], "  ... and 2 more (in e.errors)", "{run:?}");
    assert_eq!(lines[12], "12", "{run:?}");
}
