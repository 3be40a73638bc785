//! A daemon killed in the middle of a script: the call fails with `Connection`, and once the
//! daemon is back the same script's next call succeeds (the connection pool recovers). The
//! daemon is the test's own (unix socket only), so the shared test bed is never disturbed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `lxd` on `dir` and waits until it answers.
fn start_daemon(dir: &Path) -> Child {
    let child = Command::new("lxd")
        .args(["--group", "root", "--logfile"])
        .arg(dir.join("lxd.log"))
        .env("LXD_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lxd (scripts/testbed up installs it)");
    let ready = Command::new("lxd")
        .args(["waitready", "--timeout", "60"])
        .env("LXD_DIR", dir)
        .status()
        .expect("lxd waitready");
    assert!(ready.success(), "the test's own daemon did not start");
    child
}

fn wait_for(path: &Path, what: &str) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the script never got to {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the daemon and removes what it mounted, however the test ends.
struct Daemon {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("lxd")
            .args(["shutdown", "--timeout", "10"])
            .env("LXD_DIR", &self.dir)
            .status();
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&*self.dir.to_string_lossy()))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}

#[test]
fn the_pool_recovers_after_the_daemon_restarts() {
    let _ = common::testbed(); // lxd is installed by the test bed
    let work = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let dir = work.path().join("lxd");
    std::fs::create_dir(&dir).expect("dir");
    let mut daemon = Daemon {
        dir: dir.clone(),
        child: Some(start_daemon(&dir)),
    };
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
            sock = dir.join("unix.socket").display(),
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
    if let Some(mut child) = daemon.child.take() {
        child.kill().expect("kill the daemon");
        let _ = child.wait();
    }
    std::fs::write(mark("killed"), "").expect("mark");
    wait_for(&mark("r2"), "the failed call");
    daemon.child = Some(start_daemon(&dir));
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
