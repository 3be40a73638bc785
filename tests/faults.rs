//! Faults and secrets (issue: reliability): a server that never answers, an operation that has
//! vanished, and no secret in `-v` logs. Fault servers here are fakes on unix sockets of the
//! test's own, for what a real daemon cannot do on demand.

mod common;

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{Needs, script_ok, unique};

/// A server that accepts connections and never answers: `Timeout` after `--timeout`.
#[test]
fn a_silent_server_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn); // accept, read nothing, answer nothing
        }
    });
    let started = Instant::now();
    let run = common::lxd_script(&[
        "--timeout",
        "1",
        "eval",
        &format!(r#"Client("{}")"#, socket.display()),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("Timeout: GET /1.0 timed out after 1s"),
        "{}",
        run.stderr
    );
}

/// Waiting on an operation LXD has already forgotten (5 s after it ended) says so clearly.
#[test]
fn a_vanished_operation_is_reported() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("vanish");
    let _cleanup = common::Cleanup::new("main", &[name.as_str()]);
    let out = script_ok(
        &r#"
        let c = Client();
        let op = c.api.post("/1.0/instances", #{name: "NAME", source: #{type: "none"}});
        sleep(7);
        let e = error_of(|| op.wait());
        check_eq(e.kind, "NotFound", "kind");
        print(e.message);
        "#
        .replace("NAME", &name),
    );
    assert!(out.contains("LXD forgets finished operations"), "{out}");
}

/// `-v` logs every request but no secret: not the trust password (LXD), not a token.
#[test]
fn verbose_logs_hold_no_secrets() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let token = script_ok(r#"print(Client().certificates.create_token("t-verbose"));"#);
    let token = token.trim();
    // A token of this pass's server, used over HTTPS to that same server; LXD also has passwords.
    let (remote, url, secrets) = match common::server() {
        common::Server::Lxd => ("main", &tb.main_url, vec!["lxd-script-testbed", token]),
        common::Server::Incus => ("incus", &tb.incus_url, vec![token]),
    };
    for secret in secrets {
        // A new client each time, so each one is untrusted and really sends its secret.
        let conf = tempfile::tempdir().expect("tempdir");
        let run: common::Run = common::binary()
            .env("LXD_CONF", conf.path())
            .args([
                "-v",
                "eval",
                &format!(
                    r#"let c = Client(#{{endpoint: "{url}", verify: "{}/servercerts/{remote}.crt"}});
                       try {{ c.authenticate("{secret}"); }} catch (e) {{ print(e.kind); }}"#,
                    tb.conf.display()
                ),
            ])
            .output()
            .expect("run")
            .into();
        assert!(
            run.stderr.contains("lxd: POST"),
            "requests are logged: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(secret),
            "a secret in the log: {}",
            run.stderr
        );
        assert!(!run.stdout.contains(secret));
    }
    // Remove what this test added: certificates without a name (the password's), tokens left.
    script_ok(
        r#"let m = Client();
           for cert in m.certificates.all() { if cert.name == "" || cert.name == "t-verbose" { cert.delete(); } }
           for op in m.operations.all() { if op.class == "token" { try { op.cancel(); } catch {} } }"#,
    );
}

/// A fault-injecting proxy on a unix socket of its own, in front of a daemon's socket:
/// it forwards everything, and once a request containing `cut_on` has been seen on a
/// connection, cuts that connection (both ways) after `cut_after` more bytes from the server.
struct CuttingProxy {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl CuttingProxy {
    fn start(upstream: std::path::PathBuf, cut_on: &'static str, cut_after: usize) -> CuttingProxy {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("proxy.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                // usize::MAX: no cut armed yet; otherwise the downstream byte count to cut at.
                let cut_at = Arc::new(AtomicUsize::new(usize::MAX));
                let sent = Arc::new(AtomicUsize::new(0));
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (arm, seen) = (cut_at.clone(), sent.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if String::from_utf8_lossy(&buf[..n]).contains(cut_on) {
                            arm.store(seen.load(Ordering::SeqCst) + cut_after, Ordering::SeqCst);
                        }
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let (mut s_read, mut c_write) = (server, client);
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let before = sent.fetch_add(n, Ordering::SeqCst);
                        let limit = cut_at.load(Ordering::SeqCst);
                        if before + n > limit {
                            let keep = limit.saturating_sub(before);
                            let _ = c_write.write_all(&buf[..keep]);
                            // A reset, not a clean close: drop both sides mid-stream.
                            let _ = c_write.shutdown(std::net::Shutdown::Both);
                            let _ = s_read.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        CuttingProxy { socket, _dir: dir }
    }
}

/// A connection reset in the middle of an exec's output: a `Connection` error within a bounded
/// time, never a truncated success. The daemon is the test's own: a websocket cut under LXD 5.0.2
/// can leave its exec operation running for good, which must not touch the shared test bed.
#[test]
fn a_reset_mid_exec_is_a_connection_error() {
    if common::testbed_for(Needs::Lxd("it runs a private LXD daemon of its own")).is_none() {
        return;
    }
    let daemon = common::PrivateDaemon::with_image();
    let name = unique("cutexec");
    script_ok(&format!(
        r#"Client("{}").instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true).start(true);"#,
        daemon.socket().display()
    ));
    let proxy = CuttingProxy::start(daemon.socket(), "/websocket", 1_000_000);
    let started = Instant::now();
    let out = script_ok(&format!(
        r#"let i = Client("{}").instances.get("{name}");
           let e = error_of(|| i.execute(["head", "-c", "20000000", "/dev/zero"], #{{decode: false}}));
           print(e.kind);
           print(e.message);"#,
        proxy.socket.display()
    ));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(out.starts_with("Connection"), "{out}");
    // The daemon is still usable afterwards, straight and through the proxy.
    script_ok(&format!(
        r#"let i = Client("{}").instances.get("{name}");
           check_eq(i.execute(["echo", "still here"]).stdout, "still here\n", "exec after the cut");"#,
        daemon.socket().display()
    ));
}

/// A connection reset in the middle of a pull: a `Connection` error and no file, partial or
/// temporary, left behind.
#[test]
fn a_reset_mid_pull_leaves_no_partial_file() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let name = unique("cutpull");
    let _cleanup = common::Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"let i = Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);
           i.execute(["sh", "-c", "head -c 20000000 /dev/zero > /root/big"]);"#
    ));
    let proxy = CuttingProxy::start(tb.socket().clone(), "path=%2Froot%2Fbig", 2_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("big");
    let out = script_ok(&format!(
        r#"let f = Client("{}").instances.get("{name}").files;
           let e = error_of(|| f.pull("/root/big", "{}"));
           print(e.kind);"#,
        proxy.socket.display(),
        target.display()
    ));
    assert_eq!(out.trim(), "Connection");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing left behind"
    );
}

/// A connection reset in the middle of a tree pull (one SFTP session): a `Connection` error
/// within a bounded time, and no partial or temporary file of the big entry left behind.
#[test]
fn a_reset_mid_tree_pull_is_a_connection_error() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let name = unique("cuttree");
    let _cleanup = common::Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"let i = Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);
           i.execute(["sh", "-c", "mkdir /root/tree && head -c 20000000 /dev/zero > /root/tree/big"]);"#
    ));
    let proxy = CuttingProxy::start(tb.socket().clone(), "/sftp", 2_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("tree");
    let started = Instant::now();
    let out = script_ok(&format!(
        r#"let f = Client("{}").instances.get("{name}").files;
           let e = error_of(|| f.recursive_get("/root/tree", "{}"));
           print(e.kind);"#,
        proxy.socket.display(),
        target.display()
    ));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.trim(), "Connection");
    assert_eq!(
        std::fs::read_dir(&target).expect("tree").count(),
        0,
        "nothing left behind"
    );
}

/// Only TLS 1.3 is spoken: a server offering TLS 1.2 at most is refused with a `Tls` error, even
/// with `verify: false`.
#[test]
fn tls_1_2_servers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (crt, key) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=t12",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl (installed with lxd's ca-certificates)");
    assert!(made.status.success());
    // A port the kernel says is free: a fixed range could land on one of the test bed's daemons,
    // which speak TLS 1.3 and would accept us.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-tls1_2",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(&crt)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let listening = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(listening, "openssl s_server never listened on {port}");
    let run = common::lxd_script(&[
        "eval",
        &format!(
            r#"try {{ Client(#{{endpoint: "https://127.0.0.1:{port}", verify: false}}); print("connected"); }} catch (e) {{ print(e.kind); print(e.message); }}"#
        ),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(run.stdout.starts_with("Tls\n"), "{}", run.stdout);
    assert!(run.stdout.contains("ProtocolVersion"), "{}", run.stdout);
}

/// A server without an extension a call needs: `ExtensionMissing` naming the extension, the
/// server and the call, before any request that would half-succeed (an exec as another user
/// that the server would run as root). The test bed's servers have every extension used here,
/// so a fake stands in for an older one.
#[test]
fn a_missing_extension_is_refused_before_any_request() {
    let fake = common::FakeServer::start(|method, path| match (method, path) {
        ("GET", "/1.0") => common::sync_answer(serde_json::json!({
            "api_extensions": ["instances"], "auth": "trusted", "api_version": "1.0",
            "environment": {"server": "lxd", "server_version": "4.0.0"}
        })),
        ("GET", "/1.0/instances/c1") => common::sync_answer(serde_json::json!({
            "name": "c1", "status": "Running", "type": "container", "config": {}, "devices": {}
        })),
        _ => (
            500,
            serde_json::json!({"type": "error", "error_code": 500, "error": "not in this fake"}),
        ),
    });
    let out = script_ok(&format!(
        r#"let c = Client("{}");
           let i = c.instances.get("c1");
           for call in [|| i.execute(["id"], #{{user: 1000}}), || i.execute(["id"], #{{record_output: true}}),
                        || i.files.delete("/x"), || c.assert_has_api_extension("projects")] {{
               let e = error_of(call);
               check_eq(e.kind, "ExtensionMissing", e.message);
               print(e.message);
           }}"#,
        fake.socket.display()
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].contains("'container_exec_user_group_cwd'")
            && lines[0].contains("lxd 4.0.0")
            && lines[0].contains("Instance.execute"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("'container_exec_recording'"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("'file_delete'") && lines[2].contains("files.delete()"));
    assert!(lines[3].contains("'projects'"), "{}", lines[3]);
    assert_eq!(
        fake.seen(),
        ["GET /1.0", "GET /1.0/instances/c1"],
        "nothing was started"
    );
}
