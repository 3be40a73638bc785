//! A daemon killed in the middle of a script: the call fails with `Connection`, and once the
//! daemon is back the same script's next call succeeds (the connection pool recovers). The
//! daemon is the test's own (unix socket only), so the shared test bed is never disturbed.

mod common;

use common::Needs;

use std::path::Path;
use std::process::Stdio;

fn wait_for(path: &Path, what: &str) {
    common::poll_until(
        || path.exists(),
        || format!("the script never got to {what}"),
    );
}

#[test]
fn the_pool_recovers_after_the_daemon_restarts() {
    if common::testbed_for(Needs::Lxd("it runs a private LXD daemon of its own")).is_none() {
        return;
    }
    let mut daemon = common::PrivateDaemon::bare();
    let work = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let mark = |name: &str| work.path().join(name);
    let script = work.path().join("restart.rhai");
    std::fs::write(
        &script,
        format!(
            r#"
            fn exists(p) {{ let found = false; try {{ read_file(p); found = true; }} catch {{}} found }}
            let c = Client("{sock}");
            c.api.get("/1.0/instances");
            write_file("{r1}", "");
            wait_until(60, 0.05, || exists("{killed}"));
            let kind = "none";
            try {{ c.api.get("/1.0/instances"); }} catch (e) {{ kind = e.kind; }}
            print(kind);
            write_file("{r2}", "");
            wait_until(60, 0.1, || exists("{back}"));
            print(c.api.get("/1.0/instances").len());
            "#,
            sock = daemon.socket().display(),
            r1 = mark("r1").display(),
            killed = mark("killed").display(),
            r2 = mark("r2").display(),
            back = mark("back").display(),
        ),
    )
    .expect("script");
    let run = common::binary()
        .args(["--timeout", "10", "run"])
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");

    wait_for(&mark("r1"), "its first call");
    daemon.kill();
    std::fs::write(mark("killed"), "").expect("mark");
    wait_for(&mark("r2"), "the failed call");
    daemon.start();
    std::fs::write(mark("back"), "").expect("mark");

    let out = run.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["Connection", "0"]);
}
