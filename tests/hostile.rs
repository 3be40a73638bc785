//! Reliability, round two (issue: interrupted transfers, hung execs, hostile servers and inputs):
//! each test shows one fault or input and its outcome, as the README's Reliability section
//! lists them. Fakes stand in where a daemon cannot show the fault.

mod common;

use common::{Needs, lxd_script, script_ok};

/// A running busybox container of the test's own on this pass's server, after `setup` (a
/// shell command; empty for none) ran in it: its name, and the clean-up that removes it.
fn running_container(what: &str, setup: &str) -> (String, common::Cleanup) {
    let name = common::unique(what);
    let cleanup = common::Cleanup::new("main", &[name.as_str()]);
    let setup = serde_json::to_string(setup).expect("a string");
    script_ok(&format!(
        r#"let i = Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);
           let setup = {setup};
           if setup != "" {{ check_eq(i.execute(["sh", "-c", setup]).exit_code, 0, setup); }}"#
    ));
    (name, cleanup)
}

/// Durations too big for the clock are refused with `InvalidArgument`, never a panic (exit 101).
#[test]
fn huge_durations_are_refused_not_a_panic() {
    for code in [
        "sleep(1e300)",
        "wait_until(1e300, || true)",
        "wait_until(1, 1e300, || true)",
        "Client(#{timeout: 1e300})",
    ] {
        let run = lxd_script(&["eval", code]);
        assert_eq!(run.code, 1, "{code}: {run:?}");
        assert!(
            run.stderr.contains("InvalidArgument")
                && run.stderr.contains("from 0 to 1000000000")
                && run.stderr.contains("1e300"),
            "{code}: {}",
            run.stderr
        );
    }
    let run = lxd_script(&["--timeout", "1e300", "eval", "1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not 1e300"), "{}", run.stderr);
    let negative = lxd_script(&["eval", "sleep(-1)"]);
    assert!(negative.stderr.contains("not -1"), "{}", negative.stderr);

    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container("huge", "");
    script_ok(&format!(
        r#"let c = Client();
           let e = error_of(|| c.events().next(1e300));
           check_eq(e.kind, "InvalidArgument", "events().next");
           let i = c.instances.get("{name}");
           let e = error_of(|| i.execute(["true"], #{{timeout: 1e20}}));
           check_eq(e.kind, "InvalidArgument", "execute");
           let e = error_of(|| i.execute(["true"], #{{timeout: -1}}));
           check(e.message.contains("not -1"), e.message);"#
    ));
}

/// A raw fake server on a unix socket of the test's own: `/1.0` and `/1.0/instances/c1` answer
/// as a minimal LXD, anything else gets `misbehave`'s bytes written on the connection.
struct RawFake {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl RawFake {
    fn start(misbehave: fn(&mut std::os::unix::net::UnixStream)) -> RawFake {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("raw.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut conn = conn;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            if header.trim_end().is_empty() {
                                break;
                            }
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or_default();
                        let metadata = match path.split('?').next() {
                            Some("/1.0") => serde_json::json!({
                                "api_extensions": ["instances"], "auth": "trusted", "api_version": "1.0",
                                "environment": {"server": "lxd", "server_version": "5.0.2", "project": "default"}
                            }),
                            Some("/1.0/instances/c1") => serde_json::json!({
                                "name": "c1", "status": "Running", "type": "container", "config": {}, "devices": {}
                            }),
                            _ => {
                                misbehave(&mut conn);
                                return;
                            }
                        };
                        let body = serde_json::json!({"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}).to_string();
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        RawFake { socket, _dir: dir }
    }
}

/// An endless JSON answer fails at the documented cap, with a clear error, instead of filling
/// memory (it reached 5 GB in 5 s before the cap).
#[test]
fn an_endless_answer_is_cut_at_the_cap() {
    use std::io::Write;
    let fake = RawFake::start(|conn| {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut chunk = format!("{:x}\r\n", 1 << 16).into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', 1 << 16));
        chunk.extend_from_slice(b"\r\n");
        while conn.write_all(&chunk).is_ok() {}
    });
    let started = std::time::Instant::now();
    let run = lxd_script(&[
        "eval",
        &format!(r#"Client("{}").instances.all()"#, fake.socket.display()),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("ApiError")
            && run
                .stderr
                .contains("GET /1.0/instances is larger than 256 MiB"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// A transfer is bounded by the time without progress, not by its length: a stalled pull ends
/// after `--timeout` with `Timeout` and leaves nothing behind; a healthy one that takes longer
/// than `--timeout` completes.
#[test]
fn transfers_time_out_when_idle_not_when_long() {
    use std::io::Write;
    let fake = RawFake::start(|conn| {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000000\r\nX-LXD-type: file\r\nX-LXD-mode: 0644\r\nX-LXD-uid: 0\r\nX-LXD-gid: 0\r\n\r\n";
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&[b'x'; 100_000]);
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let run = lxd_script(&[
        "--timeout",
        "1",
        "eval",
        &format!(
            r#"Client("{}").instances.get("c1").files.pull("/big", "{}")"#,
            fake.socket.display(),
            dir.path().join("big").display()
        ),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("Timeout") && run.stderr.contains("timed out after 1s"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);

    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) =
        running_container("long", "yes lxd-script | head -c 300000000 > /root/big");
    let target = dir.path().join("big");
    let started = std::time::Instant::now();
    let run = lxd_script(&[
        "--timeout",
        "0.2",
        "eval",
        &format!(
            r#"let f = Client().instances.get("{name}").files; f.pull("/root/big", "{}"); f.push("{}", "/root/back")"#,
            target.display(),
            target.display()
        ),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        started.elapsed() > std::time::Duration::from_millis(400),
        "the transfers outlasted the timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::metadata(&target).expect("pulled").len(),
        300_000_000
    );
}

/// A TLS server that accepts and never answers: the timeout that ran out is the one reported
/// (the connect timeout, 10 s; it said "0s" before).
#[test]
fn a_silent_tls_server_reports_the_timeout_that_ran_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let conf = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let run: common::Run = common::binary()
        .env("LXD_CONF", conf.path())
        .env("INCUS_CONF", conf.path())
        .args([
            "eval",
            &format!(r#"Client(#{{endpoint: "https://127.0.0.1:{port}", verify: false}})"#),
        ])
        .output()
        .expect("run")
        .into();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("Timeout: GET /1.0 timed out after 10s"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// Recursive script functions reach 1,000 levels, in the script and in `parallel`'s workers
/// (they overflowed at about 200), and deeper ones end with an error that says why, not an
/// abort.
#[test]
fn scripts_recurse_a_thousand_levels() {
    let down = "fn down(n) { if n == 0 { 0 } else { 1 + down(n - 1) } }";
    let run = lxd_script(&[
        "eval",
        &format!("{down} print(down(1000)); print(parallel([1000, 999], |n| down(n)));"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "1000\n[1000, 999]\n");
    let run = lxd_script(&["eval", &format!("{down} down(100000)")]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("Stack overflow: more than 1024 nested function calls"),
        "{}",
        run.stderr
    );
}

/// `to_json` is linear and refuses values nested deeper than `parse_json` accepts (127 levels),
/// at once (depth 4,000 took 3.8 s and 516 MB, 10,000 took 25 s and 3.1 GB).
#[test]
fn deep_values_meet_one_json_depth_limit() {
    let out = script_ok(
        r#"let deep = [];
           for i in 1..127 { deep = [deep]; }
           let text = to_json(deep);
           check(parse_json(text) == deep, "round trip at the limit");
           let e = error_of(|| to_json([deep]));
           check_eq(e.kind, "InvalidArgument", "to_json past the limit");
           let e = error_of(|| parse_json("[" + text + "]"));
           check_eq(e.kind, "InvalidArgument", "parse_json past the limit");
           let huge = [];
           for i in 0..1500 { huge = [huge]; }
           let started = timestamp();
           let e = error_of(|| to_json(huge));
           check(started.elapsed < 0.5, "refused at once");
           print(e.message);"#,
    );
    assert!(out.contains("deeper than 127 arrays or maps"), "{out}");
}

/// Messages that misled: a refused event type gives LXD's reason (it was "websocket handshake
/// failed: 500"), and a missing file names its path, instance, project and remote (it was "Not
/// Found"); a write or a tree pushed into a missing directory names the directory.
#[test]
fn refusals_say_what_was_refused() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container("refuse", "");
    let tree = tempfile::tempdir().expect("tempdir");
    let tree = tree.path().display();
    let out = script_ok(&format!(
        r#"let c = Client();
           let e = error_of(|| c.events(["bogus"]));
           check_eq(e.kind, "ApiError", e.message);
           print(e.message);
           let i = c.instances.get("{name}");
           for call in [|| i.files.pull("/nowhere/x", "/tmp/never"), || i.files.get("/nowhere/x"),
                        || i.files.put("/nowhere/x", "data"), || i.files.recursive_put("{tree}", "/nowhere/x")] {{
               let e = error_of(call);
               check_eq(e.kind, "NotFound", e.message);
               print(e.message);
           }}"#
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#""bogus" isn't a supported event type"#, "{out}");
    let place = "(project 'default' of ";
    for line in &lines[1..3] {
        let read = format!("/nowhere/x not found in instance '{name}' {place}");
        assert!(line.starts_with(&read), "{out}");
    }
    let write = format!(
        "/nowhere/x cannot be written: its directory /nowhere is not found in instance '{name}' {place}"
    );
    assert!(lines[3].starts_with(&write), "{out}");
    assert!(lines[3].ends_with("): create it first"), "{out}");
    let tree = format!(
        "/nowhere/x cannot be made: its directory /nowhere is not found in instance '{name}' {place}"
    );
    assert!(lines[4].starts_with(&tree), "{out}");
}

/// Ctrl-C during `files.pull` or `recursive_get`, early or half-way, leaves nothing under the
/// destination (a 256 MB `.partial` file was left after 1.5 s).
#[test]
fn ctrl_c_mid_pull_leaves_no_partial_file() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container(
        "intpull",
        "mkdir /root/tree && yes lxd-script | head -c 400000000 > /root/tree/big",
    );
    let calls = [
        r#"files.pull("/root/tree/big", "DEST/big")"#,
        r#"files.recursive_get("/root/tree", "DEST/tree")"#,
    ];
    for call in calls {
        for min_bytes in [0, 30_000_000] {
            let dest = tempfile::tempdir().expect("tempdir");
            let script = format!(
                r#"Client().instances.get("{name}").{}"#,
                call.replace("DEST", &dest.path().display().to_string())
            );
            let partial_size = || -> Option<u64> {
                walk(dest.path())
                    .into_iter()
                    .filter(|p| p.to_string_lossy().ends_with(".partial"))
                    .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                    .max()
            };
            let (run, _) = common::interrupt(&["eval", &script], || {
                partial_size().is_some_and(|n| n >= min_bytes)
            });
            assert_eq!(run.code, 130, "{call}: {run:?}");
            let left: Vec<_> = walk(dest.path())
                .into_iter()
                .filter(|p| p.is_file())
                .collect();
            assert!(left.is_empty(), "{call} at {min_bytes} B left {left:?}");
        }
    }
}

/// Every path under `dir`, depth first.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// A push over an existing file is atomic: interrupted half-way (Ctrl-C), the old content,
/// owner and mode are intact and the temporary file is removed; complete, the new content has
/// the old owner and mode. (The old content was gone, replaced by a torn copy of the new.)
#[test]
fn an_interrupted_push_keeps_the_old_file() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container(
        "atomic",
        "echo old > /root/config.dat && chown 12:34 /root/config.dat && chmod 0640 /root/config.dat",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(400_000_000).expect("size");
    let script = format!(
        r#"Client().instances.get("{name}").files.push("{}", "/root/config.dat")"#,
        big.display()
    );
    let started = std::time::Instant::now();
    let (run, _) = common::interrupt(&["eval", &script], || {
        started.elapsed() > std::time::Duration::from_millis(700)
    });
    assert_eq!(run.code, 130, "{run:?}");
    let listing = |path: &str| {
        script_ok(&format!(
            r#"let i = Client().instances.get("{name}");
               print(i.execute(["stat", "-c", "%u:%g %a %s", "{path}"]).stdout);
               print(i.execute(["sh", "-c", "ls -a /root | grep -c partial || true"]).stdout);"#
        ))
    };
    assert_eq!(
        listing("/root/config.dat"),
        "12:34 640 4\n\n0\n\n",
        "the old file, whole, and no temporary file"
    );
    std::fs::write(&big, "new\n").expect("write");
    script_ok(&format!(
        r#"Client().instances.get("{name}").files.push("{}", "/root/config.dat");"#,
        big.display()
    ));
    assert_eq!(
        listing("/root/config.dat"),
        "12:34 640 4\n\n0\n\n",
        "the new file (4 bytes too), old owner and mode"
    );
    let out = script_ok(&format!(
        r#"print(Client().instances.get("{name}").files.get("/root/config.dat").as_string());"#
    ));
    assert_eq!(out, "new\n\n");
}

/// An exec on a daemon that stops answering mid-command (SIGSTOP) ends: its wait fails within
/// twice `--timeout`, and the output streams get a short grace (it waited on them forever).
#[test]
fn an_exec_on_a_hung_daemon_ends() {
    if common::testbed_for(Needs::Lxd("it freezes a private LXD daemon of its own")).is_none() {
        return;
    }
    let daemon = common::PrivateDaemon::with_image();
    let name = common::unique("hung");
    script_ok(&format!(
        r#"Client("{}").instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true).start(true);"#,
        daemon.socket().display()
    ));
    let child = common::binary()
        .args([
            "--timeout",
            "3",
            "eval",
            &format!(
                r#"let i = Client("{}").instances.get("{name}");
                   i.execute(["sh", "-c", "echo started; sleep 600"], #{{stdout: |chunk| print(chunk)}});"#,
                daemon.socket().display()
            ),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_secs(2));
    daemon.signal("STOP");
    let frozen = std::time::Instant::now();
    let run: common::Run = child.wait_with_output().expect("wait").into();
    let took = frozen.elapsed();
    daemon.signal("CONT");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("started"), "{run:?}");
    assert!(run.stderr.contains("Timeout"), "{run:?}");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
}

/// A stdout callback that throws, or calls `exit(n)`, ends an endless command at once: the
/// error (or the exit status) goes on and the command is stopped in the instance. (The call
/// returned only when the command ended: never, for this one.)
#[test]
fn a_throwing_callback_stops_the_command() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container("cbstop", "");
    for (callback, code, marker) in [
        ("|chunk| throw \"enough\"", 1, "loop-one"),
        ("|chunk| exit(7)", 7, "loop-two"),
    ] {
        let started = std::time::Instant::now();
        let run = lxd_script(&[
            "eval",
            &format!(
                r#"Client().instances.get("{name}").execute(["sh", "-c", "while true; do echo {marker}; sleep 0.1; done"], #{{stdout: {callback}}})"#
            ),
        ]);
        assert_eq!(run.code, code, "{run:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        if code == 1 {
            assert!(run.stderr.contains("enough"), "{run:?}");
        }
        let ps = script_ok(&format!(
            r#"print(Client().instances.get("{name}").execute(["ps", "-o", "args"]).stdout);"#
        ));
        assert!(!ps.contains(marker), "still running: {ps}");
    }
}

/// Hostile names and file types in a tree pull: what cannot be copied (a name that is not
/// UTF-8, a FIFO) is skipped and reported, the rest arrives, sparse files stay sparse; a pull
/// of a FIFO is refused at once. (The bad name aborted the whole pull with "NotFound", the FIFO
/// was skipped silently, the sparse file was written fully allocated, and pulling the FIFO
/// blocked forever.)
#[test]
fn hostile_trees_are_pulled_with_what_cannot_be_copied_reported() {
    use std::os::unix::fs::MetadataExt;
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container(
        "hostile",
        "mkdir -p /root/t/sub && echo ok > /root/t/sub/plain && mkfifo /root/t/fifo && printf x > \"/root/t/bad$(printf '\\377')name\" && truncate -s 64M /root/t/sparse && printf end >> /root/t/sparse",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::script(&format!(
        r#"let i = Client().instances.get("{name}");
           let r = i.files.recursive_get("/root/t", "{}/t");
           print(r.entries);
           for s in r.skipped {{ print(s.path + " | " + s.reason); }}
           let started = timestamp();
           let e = error_of(|| i.files.pull("/root/t/fifo", "{}/fifo"));
           check_eq(e.kind, "InvalidArgument", e.message);
           check(started.elapsed < 10.0, "refused at once");
           print(e.message);
           // LXD's read of the FIFO was released: the instance still stops at once.
           let started = timestamp();
           i.stop(#{{force: true, wait: true}});
           check(started.elapsed < 10.0, "the instance stops");"#,
        dir.path().display(),
        dir.path().display()
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "3", "sub, sub/plain and sparse: {out:?}");
    let mut skipped = lines[1..3].to_vec();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "/root/t/bad\u{fffd}name | its name is not UTF-8",
            "/root/t/fifo | a FIFO is not a file to copy"
        ],
        "{out:?}"
    );
    assert!(lines[3].contains("is a FIFO"), "{out:?}");
    assert!(
        out.stderr.contains("recursive_get: skipped /root/t/fifo"),
        "{out:?}"
    );
    let plain = dir.path().join("t/sub/plain");
    assert_eq!(std::fs::read_to_string(plain).expect("plain"), "ok\n");
    let sparse = std::fs::metadata(dir.path().join("t/sparse")).expect("sparse");
    assert_eq!(sparse.len(), (64 << 20) + 3);
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "{} blocks",
        sparse.blocks()
    );
    assert!(!dir.path().join("fifo").exists());
}

/// A big output gathered without a callback costs about its own size in memory (1 GB peaked at
/// 2.1 GB: the decoded text was copied into the script's string).
#[test]
fn a_big_output_costs_its_size() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) = running_container("bigout", "");
    let out = script_ok(&format!(
        r#"let i = Client().instances.get("{name}");
           let r = i.execute(["head", "-c", "300000000", "/dev/zero"]);
           check_eq(r.stdout.len(), 300000000, "all of it");
           let peak = read_file("/proc/self/status").split("\n").filter(|l| l.starts_with("VmHWM:"))[0];
           print(peak.split()[1]);"#
    ));
    let peak_kb: u64 = out.trim().parse().expect("VmHWM in kB");
    assert!(peak_kb < 450_000, "peak {peak_kb} kB for 300 MB of output");
}

/// A server without SFTP (before LXD 5.0): a put over an existing file cannot be renamed into
/// place, so the complete temporary file is copied over it through the files API and removed;
/// the put succeeds. A fake stands in: the test bed's servers all have SFTP.
#[test]
fn a_put_over_a_file_works_without_sftp() {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("nosftp.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let files: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    files
        .lock()
        .expect("lock")
        .insert("/f".into(), b"old".to_vec());
    let state = files.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut chunked) = (0usize, false);
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end().to_ascii_lowercase();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(n) = header.strip_prefix("content-length:") {
                            length = n.trim().parse().unwrap_or(0);
                        }
                        chunked |= header == "transfer-encoding: chunked";
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    while chunked {
                        let mut size = String::new();
                        let _ = reader.read_line(&mut size);
                        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                        let mut chunk = vec![0; size + 2];
                        let _ = reader.read_exact(&mut chunk);
                        body.extend_from_slice(&chunk[..size]);
                        chunked = size > 0;
                    }
                    let mut words = line.split_whitespace();
                    let method = words.next().unwrap_or_default().to_owned();
                    let target = words.next().unwrap_or_default().to_owned();
                    let path = target
                        .split_once("path=")
                        .map(|(_, p)| p.split('&').next().unwrap_or(p).replace("%2F", "/"))
                        .unwrap_or_default();
                    let json = |metadata: serde_json::Value| {
                        serde_json::json!({"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}).to_string()
                    };
                    let mut files = state.lock().expect("lock");
                    let (status, headers, reply) = match (method.as_str(), target.split('?').next().unwrap_or_default()) {
                        ("GET", "/1.0") => (200, "", json(serde_json::json!({
                            "api_extensions": ["instances", "file_delete"], "auth": "trusted", "api_version": "1.0",
                            "environment": {"server": "lxd", "server_version": "4.0.9", "project": "default"}}))),
                        ("GET", "/1.0/instances/c1") => (200, "", json(serde_json::json!({
                            "name": "c1", "status": "Running", "type": "container", "config": {}, "devices": {}}))),
                        ("HEAD" | "GET", "/1.0/instances/c1/files") if files.contains_key(&path) => {
                            let content = if method == "GET" { String::from_utf8_lossy(&files[&path]).into_owned() } else { String::new() };
                            (200, "X-LXD-type: file\r\nX-LXD-uid: 0\r\nX-LXD-gid: 0\r\nX-LXD-mode: 0644\r\n", content)
                        }
                        ("POST", "/1.0/instances/c1/files") => {
                            files.insert(path, body);
                            (200, "", json(serde_json::json!({})))
                        }
                        ("DELETE", "/1.0/instances/c1/files") => {
                            files.remove(&path);
                            (200, "", json(serde_json::json!({})))
                        }
                        _ => (404, "", serde_json::json!({"type": "error", "error_code": 404, "error": "not found"}).to_string()),
                    };
                    drop(files);
                    let length = if method == "HEAD" { 0 } else { reply.len() };
                    let head =
                        format!("HTTP/1.1 {status} X\r\n{headers}Content-Length: {length}\r\n\r\n");
                    if conn.write_all(head.as_bytes()).is_err()
                        || (method != "HEAD" && conn.write_all(reply.as_bytes()).is_err())
                    {
                        return;
                    }
                }
            });
        }
    });
    let run = lxd_script(&[
        "eval",
        &format!(
            r#"Client("{}").instances.get("c1").files.put("/f", "new content")"#,
            socket.display()
        ),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let files = files.lock().expect("lock");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["/f"],
        "the temporary file is gone"
    );
    assert_eq!(files["/f"], b"new content");
}

/// A full local disk is a `Local` error naming the file, not a wrong argument; nothing is left
/// on the full filesystem. A missing local file is `Local` too.
#[test]
fn a_full_local_disk_is_a_local_error() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup) =
        running_container("fulldisk", "head -c 4000000 /dev/urandom > /root/big");
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("mount");
    assert!(mounted.success(), "a 1 MiB tmpfs (the tests run as root)");
    let out = script_ok(&format!(
        r#"let i = Client().instances.get("{name}");
           let e = error_of(|| i.files.pull("/root/big", "{dest}/big"));
           check_eq(e.kind, "Local", e.message);
           print(e.message);
           let e = error_of(|| i.files.push("{dest}/missing", "/root/x"));
           check_eq(e.kind, "Local", e.message);
           print(e.message);"#,
        dest = dir.path().display()
    ));
    let left = walk(dir.path());
    let _ = std::process::Command::new("umount")
        .arg(dir.path())
        .status();
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains(&format!("{}/", dir.path().display())), "{out}");
    assert!(left.is_empty(), "left on the full disk: {left:?}");
}

/// Exec's and the event stream's websockets upgrade through the transport over HTTPS: `-v`
/// logs each handshake (101, its secret redacted) and the pinned certificate holds for them.
#[test]
fn websockets_go_through_the_transport() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let (name, _cleanup) = running_container("wsseam", "");
    let (remote, url) = match common::server() {
        common::Server::Lxd => ("main", &tb.main_url),
        common::Server::Incus => ("incus", &tb.incus_url),
    };
    let run = lxd_script(&[
        "-v",
        "eval",
        &format!(
            r#"let c = Client(#{{endpoint: "{url}", verify: "{}/servercerts/{remote}.crt"}});
               let events = c.events(["lifecycle"]);
               let out = c.instances.get("{name}").execute(["echo", "through"]).stdout;
               out.trim();
               print(out);
               events.close();"#,
            tb.conf.display()
        ),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "through\n");
    let upgrades: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("-> 101"))
        .collect();
    // The event stream, then exec's control and three data sockets.
    assert_eq!(upgrades.len(), 5, "{}", run.stderr);
    assert!(
        upgrades
            .iter()
            .all(|l| l.starts_with(&format!("lxd: GET {url}")))
    );
    assert!(
        upgrades[1..]
            .iter()
            .all(|l| l.contains("secret=<redacted>")),
        "{}",
        run.stderr
    );
}
