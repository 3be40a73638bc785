//! The command line: subcommands, exit statuses, error positions, ARGS, shebang scripts, Ctrl-C.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{binary, lxd_script};

/// `eval` runs code: 0 on success, `exit(n)` gives n.
#[test]
fn exit_statuses() {
    assert_eq!(lxd_script(&["eval", "let x = 40 + 2;"]).code, 0);
    assert_eq!(lxd_script(&["eval", "exit(7)"]).code, 7);
    assert_eq!(lxd_script(&["eval", "exit()"]).code, 0);
    let thrown = lxd_script(&["eval", "let a = 1;\nthrow \"boom\";"]);
    assert_eq!(thrown.code, 1);
    assert_eq!(thrown.stderr.trim(), "<eval>:2:1: uncaught exception: boom");
    let bad = lxd_script(&["eval", "let = 3;"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.starts_with("<eval>:1:"), "{}", bad.stderr);
    assert_eq!(lxd_script(&["no-such-command"]).code, 2);
    assert_eq!(lxd_script(&["--timeout", "-1", "eval", "1"]).code, 2);
}

/// `check` compiles without running and reports file:line:column.
#[test]
fn check_reports_positions_and_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.rhai");
    std::fs::write(&good, "throw \"never run\";\n").expect("write");
    let bad = dir.path().join("bad.rhai");
    std::fs::write(&bad, "let a = 1;\nlet b = (2;\n").expect("write");
    let ok = lxd_script(&["check", good.to_str().expect("path")]);
    assert_eq!((ok.code, ok.stderr.as_str()), (0, ""));
    let failed = lxd_script(&["check", bad.to_str().expect("path")]);
    assert_eq!(failed.code, 2);
    let expected = format!("{}:2:", bad.display());
    assert!(failed.stderr.starts_with(&expected), "{}", failed.stderr);
    let shebang = lxd_script(&["check", "scripts/tour.rhai"]);
    assert_eq!(shebang.code, 0, "{}", shebang.stderr);
}

/// `run` passes ARGS; `env` and the JSON and file helpers work.
#[test]
fn run_passes_args_and_globals_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("args.rhai");
    let data = dir.path().join("data.txt");
    std::fs::write(
        &script,
        r#"
        print(ARGS);
        print(env("LXD_SCRIPT_TEST_VAR"));
        print(env("LXD_SCRIPT_UNSET_VAR", "fallback"));
        let v = parse_json(`{"a": [1, 2.5, null, true], "b": "x"}`);
        print(type_of(v.a[0]) + " " + type_of(v.a[1]) + " " + type_of(v.a[2]));
        print(to_json(#{n: 1}));
        write_file(ARGS[1], "hello");
        print(read_file(ARGS[1]) + " " + read_blob(ARGS[1]).len());
        sleep(0.01);
        "#,
    )
    .expect("write");
    let run: common::Run = binary()
        .env("LXD_SCRIPT_TEST_VAR", "set")
        .args([
            "run",
            script.to_str().expect("path"),
            "--flag",
            data.to_str().expect("path"),
        ])
        .output()
        .expect("run")
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("[\"--flag\", \"{}\"]", data.display()));
    assert_eq!(
        &lines[1..],
        ["set", "fallback", "i64 f64 ()", "{\"n\":1}", "hello 5"]
    );
}

/// A script with `#!/usr/bin/env lxd-script` runs as a program.
#[test]
fn shebang_scripts_run_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("hello.rhai");
    std::fs::write(
        &script,
        "#!/usr/bin/env lxd-script\nprint(`hello ${ARGS[0]}`);\nexit(3);\n",
    )
    .expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_lxd-script"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&script)
        .arg("world")
        .env("PATH", path)
        .output()
        .expect("run the script");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
}

/// Ctrl-C stops a script blocked in a call at once, with status 130; a script cannot catch it.
#[test]
fn ctrl_c_interrupts_with_130() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    for code in [
        "sleep(30);",
        "try { sleep(30); } catch (e) { print(\"caught\"); }",
    ] {
        let _ = std::fs::remove_file(&ready);
        let script = format!("write_file(\"{}\", \"\"); {code}", ready.display());
        let (out, took) = common::interrupt(&["eval", &script], || ready.exists());
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert_eq!(out.code, 130, "{code}");
        assert_eq!(out.stdout, "", "{code}");
        assert!(out.stderr.contains("interrupted"));
    }
}

/// `--max-operations` stops a runaway loop with a clear error; deep recursion is caught.
#[test]
fn runaway_scripts_stop() {
    let looped = lxd_script(&["--max-operations", "10000", "eval", "loop { }"]);
    assert_eq!(looped.code, 1);
    assert!(
        looped.stderr.contains("Too many operations"),
        "{}",
        looped.stderr
    );
    let deep = lxd_script(&["eval", "fn f(n) { f(n + 1) } f(0)"]);
    assert_eq!(deep.code, 1);
    assert!(deep.stderr.contains("Stack overflow"), "{}", deep.stderr);
}

/// `--version` and `--help` work; help shows examples.
#[test]
fn version_and_help() {
    let v = lxd_script(&["--version"]);
    assert_eq!(v.code, 0);
    assert!(v.stdout.starts_with("lxd-script "));
    let h = lxd_script(&["--help"]);
    assert!(h.stdout.contains("Examples:") && h.stdout.contains("--endpoint"));
}

/// `lxd-script ARGS...` with `input` on its standard input.
fn with_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = binary()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// Without a terminal, bare `lxd-script` runs its standard input.
#[test]
fn stdin_is_a_script_when_not_a_terminal() {
    let out = with_stdin(&[], b"print(6 * 7);");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}

/// `eval` prints the value of its last expression, as the REPL shows it, unless it is `()`.
#[test]
fn eval_prints_the_value_of_its_last_expression() {
    let value = |code: &str| lxd_script(&["eval", code]).stdout;
    assert_eq!(value("40 + 2"), "42\n");
    assert_eq!(value("let x = 40 + 2;"), "");
    assert_eq!(value(r#"print("printed")"#), "printed\n");
    assert_eq!(value("#{a: 1, b: [1, 2]}"), "a: 1\nb: [1, 2]\n");
}

/// `run -` reads the script from standard input, with its arguments; its last value is not
/// printed (a script prints what it means to).
#[test]
fn run_dash_reads_the_script_from_stdin() {
    let out = with_stdin(&["run", "-", "one", "two"], b"print(ARGS); 7");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[\"one\", \"two\"]\n");
}

/// `completions SHELL` prints a script the shell loads, completing the subcommands; `man`
/// prints the man page.
#[test]
fn completions_and_man_page() {
    let bash = lxd_script(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{bash:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("lxd-script.bash");
    std::fs::write(&script, &bash.stdout).expect("write");
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(lxd-script co); COMP_CWORD=1; _lxd__script lxd-script co lxd-script; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("bash");
    let words = String::from_utf8_lossy(&completed.stdout);
    assert!(words.contains("completions"), "{words} {completed:?}");
    for shell in ["zsh", "fish"] {
        let out = lxd_script(&["completions", shell]);
        assert!(
            out.code == 0 && out.stdout.contains("lxd-script"),
            "{shell}: {out:?}"
        );
    }
    let man = lxd_script(&["man"]);
    assert_eq!(man.code, 0, "{man:?}");
    assert!(man.stdout.contains(".TH lxd-script 1"), "{}", man.stdout);
    assert!(man.stdout.contains("completions"), "{}", man.stdout);
}
