//! Exec (`execute`, `raw_interactive_execute`), against `main` and over HTTPS.

mod common;

use std::sync::OnceLock;

use common::{Cleanup, Needs, script_ok, unique};

/// One running busybox container shared by the exec tests (they only read from it or write
/// under their own paths), removed when the test binary ends.
fn container() -> &'static str {
    static SLOT: OnceLock<(String, Cleanup)> = OnceLock::new();
    common::shared_container(&SLOT, "exec")
}

fn in_container(source: &str) -> String {
    script_ok(&format!(
        "let i = Client().instances.get(\"{}\");\n{source}",
        container()
    ))
}

/// Exit codes, stdout/stderr kept apart, pylxd's tuple form, 126 and 127.
#[test]
fn exit_codes_and_streams() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let out = in_container(
        r#"
        let r = i.execute(["sh", "-c", "echo out; echo err >&2; exit 3"]);
        check_eq(r.exit_code, 3, "exit code");
        check_eq(r.stdout, "out\n", "stdout");
        check_eq(r.stderr, "err\n", "stderr");
        check_eq([r[0], r[1], r[2]], [3, "out\n", "err\n"], "tuple form");
        check_eq(i.execute(["true"]).exit_code, 0, "true");
        check_eq(i.execute(["no-such-command"]).exit_code, 127, "not found");
        check_eq(i.execute(["/etc/passwd"]).exit_code, 126, "not executable");
        check_eq(i.execute("echo 'a  b' \"c\"").stdout, "a  b c\n", "a string splits like a shell");
        print(i.execute(["uname", "-s"]));
        "#,
    );
    assert_eq!(
        out.trim(),
        r#"ExecResult(exit_code: 0, stdout: "Linux\n", stderr: "")"#
    );
}

/// environment, cwd, user and group.
#[test]
fn environment_cwd_user_group() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    in_container(
        r#"
        check_eq(i.execute(["sh", "-c", "echo $A-$B"], #{environment: #{A: "1", B: "two"}}).stdout, "1-two\n", "env");
        check_eq(i.execute(["pwd"], #{cwd: "/srv"}).stdout, "/srv\n", "cwd");
        check_eq(i.execute(["id", "-u"], #{user: 1234}).stdout, "1234\n", "user");
        check_eq(i.execute(["id", "-g"], #{user: 1234, group: 4321}).stdout, "4321\n", "group");
        check_eq(error_of(|| i.execute(["true"], #{user: -1})).kind, "InvalidArgument", "bad uid");
        check_eq(error_of(|| i.execute(["true"], #{cwdd: "/"})).kind, "InvalidArgument", "unknown option");
        check_eq(error_of(|| i.execute([])).kind, "InvalidArgument", "empty command");
        "#,
    );
}

/// Stdin of 0 B, 1 MiB and 64 MiB arrives whole.
#[test]
fn stdin_of_any_size() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    in_container(
        r#"
        check_eq(i.execute(["wc", "-c"]).stdout, "0\n", "no stdin: EOF at once");
        let r = i.execute(["wc", "-c"], #{stdin: ""});
        check_eq(r.stdout, "0\n", "empty stdin");
        check_eq(i.execute(["wc", "-c"], #{stdin: blob(1048576, 120)}).stdout, "1048576\n", "1 MiB");
        check_eq(i.execute(["wc", "-c"], #{stdin: blob(67108864, 7)}).stdout, "67108864\n", "64 MiB");
        check_eq(i.execute(["cat"], #{stdin: "héllo"}).stdout, "héllo", "text round trip");
        "#,
    );
}

/// `stdin_file` streams a local file as the command reads it; a missing file or both options
/// at once are clear errors.
#[test]
fn stdin_streams_from_a_file() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input");
    let data: Vec<u8> = (0..40_000_000u32).map(|n| (n % 251) as u8).collect();
    std::fs::write(&input, &data).expect("write");
    let sum = String::from_utf8(
        std::process::Command::new("md5sum")
            .arg(&input)
            .output()
            .expect("md5sum")
            .stdout,
    )
    .expect("utf-8");
    let sum = sum.split_whitespace().next().expect("sum");
    in_container(&format!(
        r#"
        check_eq(i.execute(["md5sum"], #{{stdin_file: "{input}"}}).stdout, "{sum}  -\n", "the whole file, in order");
        let e = error_of(|| i.execute(["cat"], #{{stdin_file: "{input}.missing"}}));
        check(e.kind == "Local" && e.message.contains("stdin_file"), e.message);
        check_eq(error_of(|| i.execute(["cat"], #{{stdin: "x", stdin_file: "{input}"}})).kind, "InvalidArgument", "both");
        "#,
        input = input.display(),
    ));
}

/// Binary output with decode: false, latin1, and callbacks that never split a character.
#[test]
fn decoding_and_callbacks() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    in_container(
        r#"
        let raw = i.execute(["printf", "\\000\\377\\200"], #{decode: false}).stdout;
        check_eq(type_of(raw), "blob", "a blob");
        check_eq(raw.to_array(), [0, 255, 128], "exact bytes");
        check_eq(i.execute(["printf", "caf\\351"], #{encoding: "latin1"}).stdout, "café", "latin1");
        check_eq(error_of(|| i.execute(["true"], #{encoding: "klingon"})).kind, "InvalidArgument", "unknown encoding");

        // 4-byte characters written one byte at a time still arrive whole.
        let chunks = [];
        let r = i.execute(["sh", "-c", "for b in 360 237 230 200 360 237 230 200; do printf \"\\\\$b\"; sleep 0.05; done"],
                          #{stdout: |c| chunks.push(c)});
        check_eq(r.stdout, "", "a stream with a callback is empty in the result");
        check_eq(chunks.reduce(|a, c| a + c, ""), "😀😀", "whole characters");
        check(chunks.all(|c| c.len() > 0), "no empty chunks");

        let blobs = [];
        i.execute(["printf", "\\001\\002"], #{decode: false, stderr: |c| blobs.push(c), stdout: |c| blobs.push(c)});
        check_eq(type_of(blobs[0]), "blob", "blob chunks without decoding");

        let errs = "";
        let r = i.execute(["sh", "-c", "echo a; echo b >&2"], #{stderr: |c| errs += c});
        check_eq([r.stdout, errs], ["a\n", "b\n"], "only stderr through the callback");

        // A callback that throws: the error surfaces after the command ended.
        let e = error_of(|| i.execute(["echo", "x"], #{stdout: |c| throw "from the callback"}));
        check(`${e}`.contains("from the callback"), `${e}`);
        "#,
    );
}

/// record_output: LXD writes the output to log files, read and deleted after the end. Same
/// results as through websockets (streams apart, exit codes, callbacks, decoding); stdin and
/// timeout are refused with a clear error; no log is left behind.
#[test]
fn recorded_output() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    in_container(
        r#"
        let logs = || Client().api.get(`/1.0/instances/${i.name}/logs`).filter(|l| l.contains("/exec_"));
        let before = logs.call().len();
        let rec = #{record_output: true};
        let r = i.execute(["sh", "-c", "echo out; echo err >&2; exit 3"], rec);
        check_eq([r.exit_code, r.stdout, r.stderr], [3, "out\n", "err\n"], "streams and exit code");
        check_eq(i.execute(["no-such-command"], rec).exit_code, 127, "not found");
        check_eq(i.execute(["/etc/passwd"], rec).exit_code, 126, "not executable");
        check_eq(i.execute(["pwd"], #{record_output: true, cwd: "/srv", user: 1234}).stdout, "/srv\n", "cwd");
        check_eq(i.execute(["printf", "caf\\351"], #{record_output: true, encoding: "latin1"}).stdout, "café", "latin1");

        // 3 MB through a callback, as blobs.
        let seen = 0;
        let r = i.execute(["head", "-c", "3000000", "/dev/zero"],
                          #{record_output: true, decode: false, stdout: |c| seen += c.len()});
        check_eq([seen, r.stdout.len()], [3000000, 0], "the callback had every byte");

        let e = error_of(|| i.execute(["cat"], #{record_output: true, stdin: "x"}));
        check_eq(e.kind, "InvalidArgument", "stdin refused");
        check(e.message.contains("drop 'stdin' or 'record_output'"), e.message);
        let e = error_of(|| i.execute(["sleep", "9"], #{record_output: true, timeout: 1}));
        check_eq(e.kind, "InvalidArgument", "timeout refused");
        check_eq(error_of(|| i.execute(["true"], #{record_output: "yes"})).kind, "InvalidArgument", "a bool");
        check_eq(logs.call().len(), before, "every log deleted");
        "#,
    );
}

/// A timeout kills the command and throws Timeout; the instance stays usable.
#[test]
fn timeouts_kill_the_command() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let out = in_container(
        r#"
        let e = error_of(|| i.execute(["sleep", "60"], #{timeout: 0.5}));
        check_eq(e.kind, "Timeout", "kind");
        print(e.message);
        check_eq(i.execute(["echo", "alive"]).stdout, "alive\n", "still usable");
        check_eq(i.execute(["sh", "-c", "pgrep sleep || echo none"]).stdout, "none\n", "the command is gone");
        "#,
    );
    assert!(out.contains("timed out after 0.5s"), "{out}");
}

/// 256 MB of stdout through a callback keeps memory flat.
#[test]
fn big_output_streams_in_constant_memory() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let out = in_container(
        r#"
        let total = 0;
        let r = i.execute(["head", "-c", "268435456", "/dev/zero"], #{decode: false, stdout: |c| total += c.len()});
        check_eq(r.exit_code, 0, "exit");
        check_eq(total, 268435456, "every byte");
        let hwm = read_file("/proc/self/status").split("\n").filter(|l| l.starts_with("VmHWM:"))[0];
        let kb = hwm.split(":")[1];
        kb.trim();                              // Rhai trims in place
        print(kb.split(" ")[0]);
        "#,
    );
    let peak_kb: u64 = out.trim().parse().expect("VmHWM in kB");
    assert!(
        peak_kb < 64 * 1024,
        "peak RSS {peak_kb} kB for 256 MB of output"
    );
}

/// raw_interactive_execute returns pylxd's websocket paths.
#[test]
fn raw_interactive_paths() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    in_container(
        r#"
        let r = i.raw_interactive_execute(["/bin/sh"]);
        check(r.ws.starts_with("/1.0/operations/") && r.ws.contains("/websocket?secret="), r.ws);
        check(r.control.starts_with("/1.0/operations/") && r.control != r.ws, r.control);
        "#,
    );
}

/// Exec over HTTPS (the `second` remote, or `incus` on the Incus pass) works the same.
#[test]
fn exec_over_https() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("exec-https");
    let _cleanup = Cleanup::new(common::https_remote(), &[name.as_str()]);
    script_ok(
        &r#"
        let i = Client("REMOTE").instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.start(true);
        check_eq(i.execute(["wc", "-c"], #{stdin: blob(1048576, 1)}).stdout, "1048576\n", "stdin over TLS");
        check_eq(i.execute(["sh", "-c", "echo o; echo e >&2; exit 4"]).exit_code, 4, "exit over TLS");
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name)
        .replace("REMOTE", common::https_remote()),
    );
}

/// Ctrl-C during an exec sends SIGINT to the command first, then the script stops with 130.
#[test]
fn ctrl_c_interrupts_the_command_first() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    use std::time::Duration;
    let marker = format!("/tmp/{}", unique("sigint"));
    let script = format!(
        r#"Client().instances.get("{}").execute(["sh", "-c", "trap 'echo INT > {marker}; exit 0' INT; touch {marker}.started; while :; do sleep 0.1; done"]);
           print("not reached");"#,
        container()
    );
    // Press Ctrl-C once the command runs (its trap is set), however loaded the machine is.
    let started =
        || in_container(&format!("print(i.files.exists(\"{marker}.started\"));")).trim() == "true";
    let (out, took) = common::interrupt(&["eval", &script], started);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    let seen = in_container(&format!("print(i.files.get(\"{marker}\").as_string());"));
    assert_eq!(seen.trim(), "INT", "the command saw SIGINT");
}
