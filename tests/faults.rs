//! Faults and secrets (issue: reliability): a server that never answers, an operation that has
//! vanished, and no secret in `-v` logs. Fault servers here are fakes on unix sockets of the
//! test's own, for what a real daemon cannot do on demand.

mod common;

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use common::{script_ok, unique};

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
    assert!(run.stderr.contains("Timeout"), "{}", run.stderr);
}

/// Waiting on an operation LXD has already forgotten (5 s after it ended) says so clearly.
#[test]
fn a_vanished_operation_is_reported() {
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

/// `-v` logs every request but no secret: not the trust password, not a token.
#[test]
fn verbose_logs_hold_no_secrets() {
    let tb = common::testbed();
    let token = script_ok(r#"print(Client().certificates.create_token("t-verbose"));"#);
    let token = token.trim();
    for secret in ["lxd-script-testbed", token] {
        // A new client each time, so each one is untrusted and really sends its secret.
        let conf = tempfile::tempdir().expect("tempdir");
        let run: common::Run = common::binary()
            .env("LXD_CONF", conf.path())
            .args([
                "-v",
                "eval",
                &format!(
                    r#"let c = Client(#{{endpoint: "{}", verify: "{}/servercerts/second.crt"}});
                       try {{ c.authenticate("{secret}"); }} catch (e) {{ print(e.kind); }}"#,
                    tb.second_url,
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
    script_ok(
        r#"let s = Client("second");
           for cert in s.certificates.all() { if cert.name == "" { cert.delete(); } }
           let m = Client();
           for op in m.operations.all() { if op.class == "token" { try { op.cancel(); } catch {} } }"#,
    );
}
