//! What every integration test shares: the test bed's environment, the server a pass runs
//! against, the binary, unique names and clean-up of what a test created.
//!
//! Tests that need the test bed begin with `let Some(tb) = common::testbed_for(Needs::...) else
//! { return };`: without the test bed's environment they return at once (so `cargo test` passes
//! on any machine), and a test that needs LXD's own daemons returns on the Incus pass.
//!
//! The single-server tests run once per server: against LXD's `main`, and again against `incus`
//! when `LXD_SCRIPT_TEST_SERVER=incus` (scripts/test runs both passes). Scripts' `Client()`,
//! [`Cleanup`] of "main" and [`https_remote`] follow the pass's server.
#![allow(dead_code)] // each test binary uses part of this module

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The server a pass of the single-server tests runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// LXD 5.0's `main` (the default pass).
    Lxd,
    /// Incus 6.0's `incus` (`LXD_SCRIPT_TEST_SERVER=incus`).
    Incus,
}

impl Server {
    /// The remote of the test bed's lxc configuration that reaches this server over HTTPS
    /// (another daemon than the one `Client()` reaches by its socket, on LXD).
    pub fn https_remote(self) -> &'static str {
        match self {
            Server::Lxd => "second",
            Server::Incus => "incus",
        }
    }

    /// The remote of the lxc configuration that `Client()` reaches on this pass.
    pub fn remote(self) -> &'static str {
        match self {
            Server::Lxd => "main",
            Server::Incus => "incus",
        }
    }

    /// The release the test bed runs: Debian's LXD 5.0.2, Incus 6.0 LTS from backports.
    pub fn version_prefix(self) -> &'static str {
        match self {
            Server::Lxd => "5.0.2",
            Server::Incus => "6.0.",
        }
    }

    /// The server's name as `GET /1.0` says it (`environment.server`).
    pub fn name(self) -> &'static str {
        match self {
            Server::Lxd => "lxd",
            Server::Incus => "incus",
        }
    }
}

/// The server of this pass, from `LXD_SCRIPT_TEST_SERVER` (`lxd`, the default, or `incus`).
pub fn server() -> Server {
    match std::env::var("LXD_SCRIPT_TEST_SERVER").as_deref() {
        Ok("incus") => Server::Incus,
        _ => Server::Lxd,
    }
}

/// The HTTPS remote of this pass: `second` on LXD, `incus` on Incus.
pub fn https_remote() -> &'static str {
    server().https_remote()
}

/// What a test needs of the test bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any one server: the test runs on the LXD pass and on the Incus pass.
    EitherServer,
    /// LXD's own daemons (`second`, the cluster, a private daemon), or LXD-only behaviour: the
    /// test runs on the LXD pass only; the reason is said on the Incus pass.
    Lxd(&'static str),
}

/// The test bed for a test that needs it, or `None` when the test must return at once: the test
/// bed's environment is absent (said once per test binary), or the test needs LXD and this is
/// the Incus pass (said per test).
pub fn testbed_for(needs: Needs) -> Option<Testbed> {
    use std::io::Write;
    // Written to the real stderr, not through eprintln!, so cargo test shows it for tests that pass.
    let say = |text: String| {
        let _ = std::io::stderr().write_all(text.as_bytes());
    };
    if std::env::var_os("LXD_TESTBED_MAIN_SOCKET").is_none() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            say(format!(
                "note: {}: no LXD/Incus test bed in the environment: the tests that need it \
                 return at once and count as passed; `scripts/test` starts the test bed and \
                 runs them all\n",
                std::env::args().next().unwrap_or_default()
            ))
        });
        return None;
    }
    if let (Needs::Lxd(why), Server::Incus) = (needs, server()) {
        say(format!("skipped on the Incus pass: {why}\n"));
        return None;
    }
    Some(testbed())
}

/// The test bed's addresses, read from the environment `scripts/testbed env` prints.
pub struct Testbed {
    /// `$LXD_DIR` of `main`.
    pub main_dir: PathBuf,
    /// The lxc client configuration with the remotes `main`, `second`, `cluster`.
    pub conf: PathBuf,
    /// `main`'s unix socket.
    pub main_socket: PathBuf,
    /// `main`'s HTTPS address.
    pub main_url: String,
    /// `second`'s HTTPS address.
    pub second_url: String,
    /// `second`'s unix socket.
    pub second_socket: PathBuf,
    /// The cluster members' unix sockets.
    pub m1_socket: PathBuf,
    /// See `m1_socket`.
    pub m2_socket: PathBuf,
    /// Incus's unix socket.
    pub incus_socket: PathBuf,
    /// Incus's HTTPS address.
    pub incus_url: String,
    /// The incus client configuration, with the remote `incus`.
    pub incus_conf: PathBuf,
}

impl Testbed {
    /// The unix socket of this pass's server (`main` or `incus`).
    pub fn socket(&self) -> &PathBuf {
        match server() {
            Server::Lxd => &self.main_socket,
            Server::Incus => &self.incus_socket,
        }
    }

    /// The environment a command started in a terminal needs to reach this pass's server, as
    /// `env` arguments (`LXD_DIR=... LXD_CONF=...`, or Incus's `INCUS_DIR`).
    pub fn env_words(&self) -> String {
        match server() {
            Server::Lxd => format!(
                "LXD_DIR={} LXD_CONF={}",
                self.main_dir.display(),
                self.conf.display()
            ),
            Server::Incus => format!(
                "-u LXD_DIR INCUS_DIR={} LXD_CONF={}",
                self.incus_socket
                    .parent()
                    .unwrap_or(&self.incus_socket)
                    .display(),
                self.conf.display()
            ),
        }
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "${name} is not set: the integration tests need the real LXD test bed. \
             Run `scripts/testbed up && eval \"$(scripts/testbed env)\"` first \
             (scripts/test does both)."
        )
    })
}

/// The test bed; panics with what to run when its environment is missing.
pub fn testbed() -> Testbed {
    Testbed {
        main_dir: var("LXD_DIR").into(),
        conf: var("LXD_CONF").into(),
        main_socket: var("LXD_TESTBED_MAIN_SOCKET").into(),
        main_url: var("LXD_TESTBED_MAIN"),
        second_url: var("LXD_TESTBED_SECOND"),
        second_socket: var("LXD_TESTBED_SECOND_SOCKET").into(),
        m1_socket: var("LXD_TESTBED_M1_SOCKET").into(),
        m2_socket: var("LXD_TESTBED_M2_SOCKET").into(),
        incus_socket: var("LXD_TESTBED_INCUS_SOCKET").into(),
        incus_url: var("LXD_TESTBED_INCUS"),
        incus_conf: var("INCUS_CONF").into(),
    }
}

/// A name no other test (or earlier run) uses: `t-<what>-<pid>-<n>`.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t-{what}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The `lxd-script` binary under test, aimed at this pass's server: on the Incus pass LXD's
/// socket variables are removed, so `Client()` finds Incus through `$INCUS_DIR`.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lxd-script"));
    if server() == Server::Incus {
        command.env_remove("LXD_DIR").env_remove("LXD_SOCKET");
    }
    command
}

/// Runs `lxd-script ARGS...` against the test bed.
pub fn lxd_script(args: &[&str]) -> Run {
    binary().args(args).output().expect("run lxd-script").into()
}

/// Helpers prepended to every test script.
const PRELUDE: &str = r#"
fn check(cond, what) { if !cond { throw `check failed: ${what}`; } }
fn check_eq(a, b, what) { if a != b { throw `check failed: ${what}: ${a} != ${b}`; } }
fn error_of(f) { try { f.call(); } catch (e) { return e; } throw "expected an error, got none"; }
"#;

/// Runs a script (with `check`, `check_eq` and `error_of` defined) and expects success;
/// returns its standard output.
pub fn script_ok(source: &str) -> String {
    let run = script(source);
    assert_eq!(
        run.code, 0,
        "script failed ({}):\n--- stderr\n{}\n--- stdout\n{}",
        run.code, run.stderr, run.stdout
    );
    run.stdout
}

/// Runs a script (with the prelude) and returns what happened.
pub fn script(source: &str) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("test.rhai");
    std::fs::write(&path, format!("{PRELUDE}{source}")).expect("write script");
    lxd_script(&["run", path.to_str().expect("utf-8 path")])
}

/// A running busybox container shared by the tests of one test binary (kept in `slot`),
/// removed when the binary ends.
pub fn shared_container(slot: &'static OnceLock<(String, Cleanup)>, what: &str) -> &'static str {
    let (name, _) = slot.get_or_init(|| {
        let name = unique(what);
        let cleanup = Cleanup::new("main", &[name.as_str()]);
        script_ok(&format!(
            r#"let i = Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
               i.start(true);"#
        ));
        (name, cleanup)
    });
    name
}

/// Starts `lxd-script ARGS...`, waits until `ready()`, presses Ctrl-C (SIGINT) and returns what
/// happened and how long the end took.
pub fn interrupt(args: &[&str], ready: impl Fn() -> bool) -> (Run, Duration) {
    let child = binary()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lxd-script");
    let waiting = Instant::now();
    while !ready() {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "never ready to interrupt"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pressed = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    (out.into(), pressed.elapsed())
}

/// Force-deletes instances when dropped, so a failing test leaves nothing behind.
pub struct Cleanup {
    remote: &'static str,
    names: Vec<String>,
}

impl Cleanup {
    /// Instances on a remote of the test bed's lxc configuration (`main`, `second`, `cluster`,
    /// `incus`); `main` means this pass's server.
    pub fn new(remote: &'static str, names: &[&str]) -> Self {
        Cleanup {
            remote: if remote == "main" {
                server().remote()
            } else {
                remote
            },
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("lxc")
                .args(["delete", "--force", &format!("{}:{name}", self.remote)])
                .output();
        }
    }
}

/// Checks `done` every 50 ms until it holds; panics with `what()` after 60 s.
pub fn poll_until(mut done: impl FnMut() -> bool, what: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "{}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An LXD daemon of the test's own on a temporary `LXD_DIR` (unix socket only), for faults that
/// could disturb the shared test bed. Stopped, and everything it mounted unmounted, on drop.
pub struct PrivateDaemon {
    /// Its `LXD_DIR`; `unix.socket` is inside.
    pub dir: PathBuf,
    child: Option<std::process::Child>,
    _work: tempfile::TempDir,
}

impl PrivateDaemon {
    /// Starts a bare daemon (no storage, no image) and waits until it answers.
    pub fn bare() -> PrivateDaemon {
        let work = tempfile::tempdir_in("/var/tmp").expect("tempdir");
        let dir = work.path().join("lxd");
        std::fs::create_dir(&dir).expect("dir");
        let mut daemon = PrivateDaemon {
            dir,
            child: None,
            _work: work,
        };
        daemon.start();
        daemon
    }

    /// Starts a daemon with a `dir` storage pool and the test bed's busybox image as `busybox`.
    pub fn with_image() -> PrivateDaemon {
        let daemon = PrivateDaemon::bare();
        let preseed = "storage_pools:\n- name: default\n  driver: dir\nprofiles:\n- name: default\n  \
                       devices:\n    root:\n      path: /\n      pool: default\n      type: disk\n";
        let mut init = daemon
            .command("lxd")
            .args(["init", "--preseed"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("lxd init");
        if let Some(mut stdin) = init.stdin.take() {
            use std::io::Write;
            stdin.write_all(preseed.as_bytes()).expect("preseed");
        }
        assert!(init.wait().expect("lxd init").success(), "lxd init");
        let image = var("LXD_TESTBED_IMAGE");
        let imported = daemon
            .command("lxc")
            .args(["image", "import", &image, "--alias", "busybox"])
            .stdout(Stdio::null())
            .status()
            .expect("lxc image import");
        assert!(imported.success(), "image import");
        daemon
    }

    /// The daemon's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("unix.socket")
    }

    /// A command aimed at this daemon (`LXD_DIR` set, a client configuration of its own).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("LXD_DIR", &self.dir)
            .env("LXD_CONF", self.dir.with_file_name("client"));
        command
    }

    /// Starts `lxd` and waits until it answers.
    pub fn start(&mut self) {
        let child = self
            .command("lxd")
            .args(["--group", "root", "--logfile"])
            .arg(self.dir.join("lxd.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lxd (scripts/testbed up installs it)");
        self.child = Some(child);
        let ready = self
            .command("lxd")
            .args(["waitready", "--timeout", "60"])
            .status()
            .expect("lxd waitready");
        assert!(ready.success(), "the test's own daemon did not start");
    }

    /// Sends the daemon a signal (`"STOP"` freezes it as a hung daemon, `"CONT"` resumes it).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{name}");
    }

    /// Kills the daemon (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill the daemon");
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("CONT");
            let _ = self
                .command("lxd")
                .args(["shutdown", "--timeout", "10"])
                .status();
        }
        self.kill();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let root = self.dir.to_string_lossy().into_owned();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}

/// A tmux server of this test's own.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a detached session `t` of the given size.
    pub fn start(command: &str, width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: unique("tmux"),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        tmux
    }

    /// Runs a tmux command against this server.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux (scripts/testbed up installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys`, then Enter.
    pub fn keys(&self, keys: &str) {
        self.type_text(keys);
        self.run(&["send-keys", "-t", "t", "Enter"]);
    }

    /// Presses keys without Enter (`Tab`, `C-c`, `Up` are key names).
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types text literally, without Enter.
    pub fn type_text(&self, text: &str) {
        // tmux reads an argument's trailing `;` as its command separator: send that one escaped.
        let (body, semicolon) = match text.strip_suffix(';') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if !body.is_empty() {
            self.run(&["send-keys", "-t", "t", "-l", body]);
        }
        if semicolon {
            self.run(&["send-keys", "-t", "t", "\\;"]);
        }
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-t", "t", "-p"])
    }

    /// Waits until the screen shows `text`.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_for_count(text, 1)
    }

    /// Waits until the screen shows `text` at least `count` times (earlier output stays).
    pub fn wait_for_count(&self, text: &str, count: usize) -> String {
        let mut screen = String::new();
        poll_until(
            || {
                screen = self.screen();
                screen.matches(text).count() >= count
            },
            || {
                format!(
                    "no {text:?} ({count} times) on the screen:\n{}",
                    self.screen()
                )
            },
        );
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// An in-process fake server on a unix socket of the test's own, for what the real daemons of
/// the test bed cannot show (such as a server without some API extension). It answers each
/// request with `answer(method, path)` as a JSON body, keeps connections alive, and records
/// every request line.
pub struct FakeServer {
    /// The socket to connect to.
    pub socket: PathBuf,
    /// `METHOD /path?query` of every request, in order.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl FakeServer {
    /// Starts serving; `answer` gives the status and JSON body of each request.
    pub fn start(answer: fn(&str, &str) -> (u16, serde_json::Value)) -> FakeServer {
        use std::io::{BufRead, BufReader, Read, Write};
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("fake.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut writer = conn;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let mut words = line.split_whitespace();
                        let (method, path) = (
                            words.next().unwrap_or_default().to_owned(),
                            words.next().unwrap_or_default().to_owned(),
                        );
                        seen.lock().expect("lock").push(format!("{method} {path}"));
                        let (status, json) = answer(&method, &path);
                        let text = json.to_string();
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if writer.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeServer {
            socket,
            requests,
            _dir: dir,
        }
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// LXD's envelope of a synchronous answer.
pub fn sync_answer(metadata: serde_json::Value) -> (u16, serde_json::Value) {
    (
        200,
        serde_json::json!({"type": "sync", "status": "Success", "status_code": 200, "metadata": metadata}),
    )
}

/// A plain HTTP server on loopback serving the files of a directory (GET and HEAD), with extra
/// response headers for chosen paths: an image server for the daemons of the test bed to
/// download from (simplestreams metadata and files, or a URL answering with LXD's headers).
pub struct FileServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every `METHOD /path` served, in order.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FileServer {
    /// Serves `root`; `headers` adds headers to the answers for a path (which need not be a
    /// file: it is then answered with an empty body); `{url}` in a value is the server's URL.
    pub fn start(root: PathBuf, headers: Vec<(String, Vec<(String, String)>)>) -> FileServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let headers = std::sync::Arc::new(headers);
        let own = url.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (root, seen, headers) = (root.clone(), seen.clone(), headers.clone());
                let own = own.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut writer = conn;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0
                            || header.trim_end().is_empty()
                        {
                            break;
                        }
                    }
                    let mut words = line.split_whitespace();
                    let method = words.next().unwrap_or_default().to_owned();
                    let path = words.next().unwrap_or_default().to_owned();
                    seen.lock().expect("lock").push(format!("{method} {path}"));
                    let extra = headers.iter().find(|(p, _)| *p == path).map(|(_, h)| h);
                    let file = root.join(path.trim_start_matches('/'));
                    let body = if path.contains("..") {
                        None
                    } else {
                        std::fs::read(&file).ok().filter(|_| file.is_file())
                    };
                    let (status, body) = match (body, extra) {
                        (Some(body), _) => ("200 OK", body),
                        (None, Some(_)) => ("200 OK", Vec::new()),
                        (None, None) => ("404 Not Found", Vec::new()),
                    };
                    let mut head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (name, value) in extra.into_iter().flatten() {
                        head.push_str(&format!("{name}: {}\r\n", value.replace("{url}", &own)));
                    }
                    head.push_str("\r\n");
                    let _ = writer.write_all(head.as_bytes());
                    if method != "HEAD" {
                        let _ = writer.write_all(&body);
                    }
                });
            }
        });
        FileServer { url, requests }
    }

    /// The requests served so far.
    pub fn seen(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}
