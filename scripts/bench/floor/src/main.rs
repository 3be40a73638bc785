//! The benchmarks' floor: the least a client must do for each workload, on LXD's unix socket.
//! Raw HTTP/1.1 on one keep-alive connection, websockets framed by hand, std only, no retries,
//! no checks beyond what keeps the numbers honest. Prints `{"times": [seconds, ...]}`.
//!
//! floor SOCKET WORKLOAD ITERATIONS [ARGS...]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One keep-alive HTTP connection.
struct Conn {
    socket: String,
    stream: BufReader<UnixStream>,
}

/// An answer: status, headers (lower-cased names) and body (unless streamed elsewhere).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The string value of the first `"key":"value"` in a JSON text.
fn json_str(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text[at..].trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

fn connect(socket: &str) -> Result<UnixStream> {
    Ok(UnixStream::connect(socket)?)
}

impl Conn {
    fn new(socket: &str) -> Result<Conn> {
        Ok(Conn {
            socket: socket.to_owned(),
            stream: BufReader::with_capacity(1 << 16, connect(socket)?),
        })
    }

    fn head(&mut self) -> Result<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status = line.split(' ').nth(1).ok_or("no status")?.parse()?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                return Ok((status, headers));
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
    }

    /// Sends a request; the body comes from `body` (with its length). The answer's body goes
    /// to `sink` when given, else into the answer.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<(&mut dyn Read, u64)>,
        sink: Option<&mut dyn Write>,
    ) -> Result<Answer> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: lxd\r\n");
        for (n, v) in extra {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        let len = body.as_ref().map_or(0, |(_, l)| *l);
        head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
        let out = self.stream.get_mut();
        out.write_all(head.as_bytes())?;
        if let Some((reader, _)) = body {
            std::io::copy(reader, out)?;
        }
        let (status, headers) = self.head()?;
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
        };
        let mut local = Vec::new();
        let sink: &mut dyn Write = match sink {
            Some(s) => s,
            None => &mut local,
        };
        if answer.header("transfer-encoding") == Some("chunked") {
            loop {
                let mut size = String::new();
                self.stream.read_line(&mut size)?;
                let n = u64::from_str_radix(size.trim(), 16)?;
                std::io::copy(&mut (&mut self.stream).take(n), sink)?;
                let mut crlf = [0u8; 2];
                self.stream.read_exact(&mut crlf)?;
                if n == 0 {
                    break;
                }
            }
        } else {
            let n: u64 = answer
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            std::io::copy(&mut (&mut self.stream).take(n), sink)?;
        }
        answer.body = local;
        if answer.status >= 400 {
            return Err(format!("{method} {path}: {} {}", answer.status, answer.text()).into());
        }
        Ok(answer)
    }

    fn get(&mut self, path: &str) -> Result<Answer> {
        self.call("GET", path, &[], None, None)
    }

    fn json(&mut self, method: &str, path: &str, body: &str) -> Result<Answer> {
        let mut bytes = body.as_bytes();
        let len = bytes.len() as u64;
        self.call(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some((&mut bytes, len)),
            None,
        )
    }

    /// Waits for the operation an async answer started; errors when it failed.
    fn wait(&mut self, answer: &Answer) -> Result<String> {
        let op = json_str(&answer.text(), "operation").ok_or("no operation")?;
        let done = self.get(&format!("{op}/wait?timeout=120"))?.text();
        if json_str(&done, "status").as_deref() != Some("Success") {
            return Err(format!("operation failed: {done}").into());
        }
        Ok(done)
    }
}

/// A websocket of an operation: handshake done, frames by hand.
struct Ws(UnixStream);

impl Ws {
    fn open(socket: &str, path: &str) -> Result<Ws> {
        let mut s = connect(socket)?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: lxd\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes())?;
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte)?;
            seen.push(byte[0]);
        }
        if !seen.starts_with(b"HTTP/1.1 101") {
            return Err(format!("no upgrade: {}", String::from_utf8_lossy(&seen)).into());
        }
        Ok(Ws(s))
    }

    /// Sends one masked frame.
    fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        let mut head = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => head.push(0x80 | n as u8),
            n if n < 65536 => {
                head.push(0x80 | 126);
                head.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                head.push(0x80 | 127);
                head.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0xa5, 0x3c, 0xc3];
        head.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        for (i, b) in body.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        head.extend_from_slice(&body);
        self.0.write_all(&head)?;
        Ok(())
    }

    /// Reads data frames into `sink` until the peer closes; answers pings.
    fn drain(&mut self, sink: &mut dyn Write) -> Result<u64> {
        let mut total = 0u64;
        let mut reader = BufReader::with_capacity(1 << 16, self.0.try_clone()?);
        loop {
            let mut h = [0u8; 2];
            if reader.read_exact(&mut h).is_err() {
                return Ok(total);
            }
            let opcode = h[0] & 0x0f;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                reader.read_exact(&mut b)?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                reader.read_exact(&mut b)?;
                len = u64::from_be_bytes(b);
            }
            match opcode {
                8 => {
                    let _ = self.send(8, &[]);
                    return Ok(total);
                }
                9 => {
                    let mut p = vec![0u8; len as usize];
                    reader.read_exact(&mut p)?;
                    // LXD may close right after its ping: a lost pong is no error.
                    let _ = self.send(10, &p);
                }
                _ => {
                    total += std::io::copy(&mut (&mut reader).take(len), sink)?;
                }
            }
        }
    }
}

/// Runs a command through exec websockets: stdin from `input`, stdout counted and dropped.
/// Returns the exit code and the stdout byte count.
fn exec(conn: &mut Conn, name: &str, cmd: &[&str], input: Option<&Path>) -> Result<(i64, u64)> {
    let started = start_exec(
        conn,
        name,
        cmd,
        "\"wait-for-websocket\":true,\"interactive\":false",
    )?;
    let text = started.text();
    let op = json_str(&text, "operation").ok_or("no operation")?;
    let secret = |fd: &str| json_str(&text, fd).ok_or(format!("no secret {fd}"));
    let url = |fd: &str| -> Result<String> { Ok(format!("{op}/websocket?secret={}", secret(fd)?)) };
    let control = Ws::open(&conn.socket, &url("control")?)?;
    let mut stdin = Ws::open(&conn.socket, &url("0")?)?;
    let mut stdout = Ws::open(&conn.socket, &url("1")?)?;
    let mut stderr = Ws::open(&conn.socket, &url("2")?)?;
    let out = std::thread::spawn(move || stdout.drain(&mut std::io::sink()));
    let err = std::thread::spawn(move || stderr.drain(&mut std::io::sink()));
    if let Some(path) = input {
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 17];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            stdin.send(2, &buf[..n])?;
        }
    }
    // LXD may already have closed stdin (the command ended): a lost close is no error.
    let _ = stdin.send(8, &[]);
    let done = conn.get(&format!("{op}/wait?timeout=120"))?.text();
    let bytes = out.join().map_err(|_| "stdout thread")??;
    err.join().map_err(|_| "stderr thread")??;
    drop(control);
    Ok((return_code(&done)?, bytes))
}

/// An exec in LXD's record-output mode: no websockets; the logs are read and deleted after the
/// end. Returns the exit code and the stdout bytes.
fn exec_recorded(conn: &mut Conn, name: &str, cmd: &[&str]) -> Result<(i64, u64)> {
    let started = start_exec(
        conn,
        name,
        cmd,
        "\"record-output\":true,\"wait-for-websocket\":false",
    )?;
    let done = conn.wait(&started)?;
    let mut bytes = 0;
    for fd in ["1", "2"] {
        let log = json_str(&done, fd).ok_or(format!("no log for fd {fd}"))?;
        // Kept in memory, as a client that returns the output does.
        let output = conn.get(&log)?.body;
        if fd == "1" {
            bytes = output.len() as u64;
        }
        conn.call("DELETE", &log, &[], None, None)?;
    }
    Ok((return_code(&done)?, bytes))
}

/// POSTs an exec of `cmd` with the request's other fields in `fields` (JSON members).
fn start_exec(conn: &mut Conn, name: &str, cmd: &[&str], fields: &str) -> Result<Answer> {
    let argv = cmd
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(",");
    conn.json(
        "POST",
        &format!("/1.0/instances/{name}/exec"),
        &format!("{{\"command\":[{argv}],{fields}}}"),
    )
}

/// The exit code in an ended exec operation.
fn return_code(done: &str) -> Result<i64> {
    Ok(done
        .split("\"return\":")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit() && c != '-').next())
        .and_then(|n| n.parse().ok())
        .ok_or("no return code")?)
}

fn file_path(name: &str, path: &str) -> String {
    format!("/1.0/instances/{name}/files?path={path}")
}

fn push(conn: &mut Conn, name: &str, local: &Path, remote: &str) -> Result<()> {
    let mut file = std::fs::File::open(local)?;
    let len = file.metadata()?.len();
    conn.call(
        "POST",
        &file_path(name, remote),
        &[
            ("X-LXD-type", "file"),
            ("X-LXD-write", "overwrite"),
            ("X-Incus-type", "file"),
            ("X-Incus-write", "overwrite"),
        ],
        Some((&mut file, len)),
        None,
    )?;
    Ok(())
}

fn pull(conn: &mut Conn, name: &str, remote: &str, local: &Path) -> Result<()> {
    let mut file = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(local)?);
    conn.call("GET", &file_path(name, remote), &[], None, Some(&mut file))?;
    file.flush()?;
    Ok(())
}

fn mkdir(conn: &mut Conn, name: &str, remote: &str) -> Result<()> {
    let mut empty: &[u8] = &[];
    conn.call(
        "POST",
        &file_path(name, remote),
        &[("X-LXD-type", "directory"), ("X-Incus-type", "directory")],
        Some((&mut empty, 0)),
        None,
    )?;
    Ok(())
}

fn recursive_push(conn: &mut Conn, name: &str, local: &Path, remote: &str) -> Result<()> {
    mkdir(conn, name, remote)?;
    for entry in std::fs::read_dir(local)? {
        let entry = entry?;
        let target = format!("{remote}/{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            recursive_push(conn, name, &entry.path(), &target)?;
        } else {
            push(conn, name, &entry.path(), &target)?;
        }
    }
    Ok(())
}

fn recursive_pull(conn: &mut Conn, name: &str, remote: &str, local: &Path) -> Result<()> {
    std::fs::create_dir_all(local)?;
    let listing = conn.get(&file_path(name, remote))?.text();
    let list = listing
        .split("\"metadata\":[")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    for entry in list
        .split(',')
        .map(|e| e.trim().trim_matches('"'))
        .filter(|e| !e.is_empty())
    {
        let from = format!("{remote}/{entry}");
        let mut probe = Vec::new();
        let answer = conn.call("GET", &file_path(name, &from), &[], None, Some(&mut probe))?;
        let kind = answer
            .header("x-lxd-type")
            .or_else(|| answer.header("x-incus-type"));
        if kind == Some("directory") {
            recursive_pull(conn, name, &from, &local.join(entry))?;
        } else {
            std::fs::write(local.join(entry), &probe)?;
        }
    }
    Ok(())
}

/// A backup made (uncompressed), streamed to `local` and deleted, as `lxc export` does.
fn backup_export(conn: &mut Conn, name: &str, local: &Path) -> Result<()> {
    let backups = format!("/1.0/instances/{name}/backups");
    let made = conn.json(
        "POST",
        &backups,
        "{\"name\":\"floor\",\"compression_algorithm\":\"none\"}",
    )?;
    conn.wait(&made)?;
    let mut file = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(local)?);
    conn.call("GET", &format!("{backups}/floor/export"), &[], None, Some(&mut file))?;
    file.flush()?;
    let gone = conn.call("DELETE", &format!("{backups}/floor"), &[], None, None)?;
    conn.wait(&gone)?;
    Ok(())
}

/// create + start + exec true + stop + delete of one container.
fn lifecycle(conn: &mut Conn, name: &str, with_exec: bool) -> Result<()> {
    let a = conn.json(
        "POST",
        "/1.0/instances",
        &format!("{{\"name\":\"{name}\",\"source\":{{\"type\":\"image\",\"alias\":\"busybox\"}}}}"),
    )?;
    conn.wait(&a)?;
    let state = format!("/1.0/instances/{name}/state");
    let a = conn.json("PUT", &state, "{\"action\":\"start\",\"timeout\":30}")?;
    conn.wait(&a)?;
    if with_exec {
        exec(conn, name, &["true"], None)?;
    }
    let a = conn.json(
        "PUT",
        &state,
        "{\"action\":\"stop\",\"force\":true,\"timeout\":30}",
    )?;
    conn.wait(&a)?;
    let a = conn.call("DELETE", &format!("/1.0/instances/{name}"), &[], None, None)?;
    conn.wait(&a)?;
    Ok(())
}

fn run(socket: &str, workload: &str, iterations: usize, args: &[String]) -> Result<Vec<f64>> {
    if workload == "fleet" {
        return fleet(socket, iterations, args);
    }
    let mut conn = Conn::new(socket)?;
    let arg = |i: usize| -> Result<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("{workload}: argument {} missing", i + 1).into())
    };
    let mut times = Vec::with_capacity(iterations);
    for n in 0..iterations {
        let started = Instant::now();
        match workload {
            "first-request" => {
                conn.get("/1.0")?;
            }
            "get" => {
                conn.get(&format!("/1.0/instances/{}", arg(0)?))?;
            }
            "all" | "all-state" => {
                let recursion = if workload == "all" { 1 } else { 2 };
                let project = args.first().map(|p| format!("&project={p}")).unwrap_or_default();
                conn.get(&format!("/1.0/instances?recursion={recursion}{project}"))?;
            }
            "backup-export" => backup_export(&mut conn, arg(0)?, Path::new(arg(1)?))?,
            "lifecycle" => lifecycle(&mut conn, &format!("{}-{n}", arg(0)?), false)?,
            "exec" => {
                let (code, _) = exec(&mut conn, arg(0)?, &["true"], None)?;
                if code != 0 {
                    return Err("exec true failed".into());
                }
            }
            "exec-stdout" => {
                let size = arg(1)?;
                let (_, bytes) =
                    exec(&mut conn, arg(0)?, &["head", "-c", size, "/dev/zero"], None)?;
                if bytes.to_string() != size {
                    return Err(format!("got {bytes} bytes of {size}").into());
                }
            }
            "exec-stdout-recorded" => {
                let size = arg(1)?;
                let (_, bytes) =
                    exec_recorded(&mut conn, arg(0)?, &["head", "-c", size, "/dev/zero"])?;
                if bytes.to_string() != size {
                    return Err(format!("got {bytes} bytes of {size}").into());
                }
            }
            "exec-stdin" => {
                exec(&mut conn, arg(0)?, &["wc", "-c"], Some(Path::new(arg(1)?)))?;
            }
            "push" => push(&mut conn, arg(0)?, Path::new(arg(1)?), arg(2)?)?,
            "pull" => pull(&mut conn, arg(0)?, arg(1)?, Path::new(arg(2)?))?,
            "recursive-push" => recursive_push(&mut conn, arg(0)?, Path::new(arg(1)?), arg(2)?)?,
            "recursive-pull" => recursive_pull(&mut conn, arg(0)?, arg(1)?, Path::new(arg(2)?))?,
            "snapshot" => {
                let name = arg(0)?;
                let a = conn.json(
                    "POST",
                    &format!("/1.0/instances/{name}/snapshots"),
                    &format!("{{\"name\":\"floor{n}\"}}"),
                )?;
                conn.wait(&a)?;
                let a = conn.call(
                    "DELETE",
                    &format!("/1.0/instances/{name}/snapshots/floor{n}"),
                    &[],
                    None,
                    None,
                )?;
                conn.wait(&a)?;
            }
            other => return Err(format!("unknown workload {other}").into()),
        }
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// Fleets of `count` containers (create, start, exec, stop, delete), `width` at a time, each
/// worker on a connection of its own. No connection is opened before it has a request to send:
/// LXD 5.0.2 stops accepting on its unix socket while a connection sits silent.
fn fleet(socket: &str, iterations: usize, args: &[String]) -> Result<Vec<f64>> {
    let [prefix, count, width] = args else {
        return Err("fleet PREFIX COUNT WIDTH".into());
    };
    let (count, width): (usize, usize) = (count.parse()?, width.parse()?);
    let mut times = Vec::with_capacity(iterations);
    for n in 0..iterations {
        let started = Instant::now();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..width)
            .map(|_| {
                let (next, prefix, socket) =
                    (next.clone(), format!("{prefix}-{n}"), socket.to_owned());
                std::thread::spawn(move || -> Result<()> {
                    let mut conn = Conn::new(&socket)?;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= count {
                            return Ok(());
                        }
                        lifecycle(&mut conn, &format!("{prefix}-{i}"), true)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| "worker panicked")??;
        }
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: floor SOCKET WORKLOAD ITERATIONS [ARGS...]");
        std::process::exit(2);
    }
    let iterations = args[2].parse().unwrap_or(1);
    match run(&args[0], &args[1], iterations, &args[3..]) {
        Ok(times) => {
            let list: Vec<String> = times.iter().map(|t| format!("{t:.6}")).collect();
            println!("{{\"times\": [{}]}}", list.join(", "));
        }
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::exit(1);
        }
    }
}
