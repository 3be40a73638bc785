//! `lxd-script shell` and `Instance.interactive`, driven through a real terminal (tmux).

mod common;

use std::time::Duration;

use common::{Cleanup, Needs, Tmux, script_ok, unique};

/// The login shell with the terminal's size, a resize, the exit status, and the terminal
/// restored afterwards.
#[test]
fn shell_in_a_terminal() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let name = unique("shell");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true).start(true);"#
    ));
    let command = format!(
        "env {} {} shell {name}; echo EXIT=$?; stty -a; sleep 60",
        tb.env_words(),
        env!("CARGO_BIN_EXE_lxd-script"),
    );
    let tmux = Tmux::start(&command, 100, 30);
    tmux.wait_for("#");
    // Wait for what only the output holds: the typed line is on the screen first.
    tmux.keys("echo SIZE=$(stty size) UID=$(id -u)");
    let screen = tmux.wait_for("UID=0");
    assert!(screen.contains("SIZE=30 100"), "initial size:\n{screen}");
    tmux.run(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.keys("stty size");
    tmux.wait_for("40 120");
    tmux.keys("exit 7");
    tmux.wait_for("EXIT=7");
    // Back on the local terminal (`stty -a` runs next): canonical mode and echo are on again.
    let screen = tmux.wait_for("speed");
    assert!(
        screen.contains(" icanon") && !screen.contains("-icanon") && screen.contains(" echo "),
        "terminal not restored:\n{screen}"
    );
}

/// `interactive(cmd)` from a script returns the command's exit code; `shell REMOTE:NAME -- CMD`
/// runs a command on a remote; a missing instance is a clear error.
#[test]
fn interactive_commands_and_remotes() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let name = unique("inter");
    let remote = common::https_remote();
    let _cleanup = Cleanup::new(remote, &[name.as_str()]);
    script_ok(&format!(
        r#"Client("{remote}").instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true).start(true);"#
    ));
    let bin = env!("CARGO_BIN_EXE_lxd-script");
    let env = format!("env {}", tb.env_words());
    // The pause after `tty`: LXD before 5.14 drops what an interactive command wrote when it
    // exits before LXD has read it (its PTY reader stops when the command ends), which a
    // loaded machine shows now and then (a server-side race: see the README's LXD/Incus table).
    let command = format!(
        "{env} {bin} shell {remote}:{name} -- sh -c 'tty; sleep 1; exit 3'; echo EXIT=$?; \
         {env} {bin} eval 'exit(Client(\"{remote}\").instances.get(\"{name}\").interactive(\"sh -c \\\"exit 4\\\"\"))'; echo EXIT=$?; \
         {env} {bin} shell no-such-instance; echo EXIT=$?; sleep 60"
    );
    let tmux = Tmux::start(&command, 80, 24);
    let screen = tmux.wait_for("EXIT=1");
    assert!(screen.contains("/dev/pts/"), "a PTY:\n{screen}");
    assert!(
        screen.contains("EXIT=3") && screen.contains("EXIT=4"),
        "{screen}"
    );
    assert!(screen.contains("NotFound"), "{screen}");
}

/// A transfer that lasts over a second shows a progress bar on a terminal, and none with
/// `--no-progress` or when stderr is not a terminal.
#[test]
fn progress_bars_only_on_terminals() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let name = unique("progress");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true).start(true);"#
    ));
    let work = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let big = work.path().join("big");
    std::fs::File::create(&big)
        .expect("create")
        .set_len(1 << 30)
        .expect("size");
    let push = format!(
        "let f = Client().instances.get(\"{name}\").files; f.push(\"{}\", \"/root/big\"); f.pull(\"/root/big\", \"{}\");",
        big.display(),
        work.path().join("back").display()
    );
    let env = format!("env {}", tb.env_words());
    let bin = env!("CARGO_BIN_EXE_lxd-script");
    let quoted = push.replace('\'', "'\\''");
    let tmux = Tmux::start(
        &format!("{env} {bin} eval '{quoted}' ; echo DONE; sleep 60"),
        120,
        10,
    );
    let screen = tmux.wait_for("push ");
    assert!(
        screen.contains("GiB") || screen.contains("MiB"),
        "a byte count:\n{screen}"
    );
    let screen = tmux.wait_for("DONE");
    assert!(
        !screen.contains("push "),
        "the bar is cleared at the end:\n{screen}"
    );
    drop(tmux);

    let quiet = Tmux::start(
        &format!("{env} {bin} --no-progress eval '{quoted}' ; echo DONE; sleep 60"),
        120,
        10,
    );
    let screen = quiet.wait_for("DONE");
    assert!(
        !screen.contains("push "),
        "no bar with --no-progress:\n{screen}"
    );
    // Not a terminal: nothing on stderr.
    let run = common::lxd_script(&["eval", &push]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
}

/// Operations with LXD-reported progress (publish, image copy) show it on a terminal.
#[test]
fn operation_progress_on_terminals() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let name = unique("bigimg");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"let i = Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);
           i.execute(["sh", "-c", "head -c 300000000 /dev/urandom > /root/blob"]);
           i.stop(true);"#
    ));
    let script = format!(
        r#"let img = Client().instances.get("{name}").publish(#{{wait: true, compression_algorithm: "none"}});
           let copied = img.copy(Client("second"));
           copied.delete(); img.delete();"#
    );
    let env = format!("env {}", tb.env_words());
    let quoted = script.replace('\'', "'\\''");
    let tmux = Tmux::start(
        &format!(
            "{env} {} eval '{quoted}'; echo DONE=$?; sleep 60",
            env!("CARGO_BIN_EXE_lxd-script")
        ),
        150,
        8,
    );
    let screen = tmux.wait_for("copy: ");
    assert!(screen.contains('%'), "LXD's progress text:\n{screen}");
    let screen = tmux.wait_for("DONE=0");
    assert!(!screen.contains("copy: "), "cleared when done:\n{screen}");
}

/// Without a terminal (pipes, files) `shell` has no PTY, as `lxc exec`: stdout and stderr
/// apart and unchanged (no `\r\n`), the exit status passed through, piped input whole.
#[test]
fn shell_without_a_terminal_keeps_the_streams_apart() {
    use std::io::Write;
    use std::process::Stdio;
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("pipes");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"let i = Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);"#
    ));
    let run = common::lxd_script(&[
        "shell",
        &name,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let input: String = (1..=20_000).map(|n| format!("{n}\n")).collect();
    let mut child = common::binary()
        .args(["shell", &name, "--", "wc", "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "20000");
}
