"""Runs every workload with every contender against the test bed's `main` (LXD), then the core
workloads against its `incus` (Incus), interleaved, and writes both Markdown tables to
RESULTS.md. Started by scripts/bench/run, which prepares the tools.

Contenders: lxd-script (a Rhai script timing itself in-process), pylxd (a Python script timing
itself in-process; LXD only), the server's own CLI, `lxc` or `incus` (whole processes, timed by
hyperfine) and the floor (a minimal keep-alive client of ours, timing itself). Peak RSS comes
from wait4() for memory workloads.
"""

import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = "/var/tmp/lxd-script-bench"
CONTAINER = "bench-c"
MB = 1_000_000


class Server:
    """A daemon of the test bed the workloads run against, with its own contenders."""

    def __init__(self, key, title, socket, cli, contenders, rows):
        self.key, self.title, self.socket, self.cli = key, title, socket, cli
        self.contenders, self.rows = contenders, rows

    def cli_line(self, line):
        """A command line written for `lxc`, for this server's CLI."""
        return re.sub(r"\blxc\b", self.cli, line) if line else line


# On Incus, the core rows: a GET, exec, 100 MB both ways and the recursive transfers.
INCUS_ROWS = ["get", "exec", "push100", "pull100", "rpush", "rpull"]


def servers():
    return {
        "lxd": Server("lxd", "LXD", os.path.join(os.environ["LXD_DIR"], "unix.socket"), "lxc",
                      ["lxd-script", "pylxd", "lxc", "floor"], None),
        "incus": Server("incus", "Incus", os.environ["LXD_TESTBED_INCUS_SOCKET"], "incus",
                        ["lxd-script", "incus", "floor"], INCUS_ROWS),
    }


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


class Tools:
    def __init__(self, args):
        self.lxd_script = os.path.join(ROOT, "target/release/lxd-script")
        self.python = args.python
        self.floor = os.path.join(HERE, "floor/target/release/lxd-floor")
        self.socket = None

    def command(self, contender, workload, iterations, args):
        """The argv of an in-process contender."""
        if contender == "lxd-script":
            return [self.lxd_script, "--no-progress", "--endpoint", self.socket, "run",
                    os.path.join(HERE, "lxd-script.rhai"), workload, str(iterations), *args]
        if contender == "pylxd":
            return [self.python, os.path.join(HERE, "pylxd_bench.py"), workload, str(iterations),
                    *args]
        if contender == "floor":
            return [self.floor, self.socket, workload, str(iterations), *args]
        raise ValueError(contender)


# No batch may hang the run: `lxc exec` itself sometimes never returns under concurrent load.
# The slowest batch that ends (a sequential fleet of 10) takes about 12 s.
BATCH_TIMEOUT = 120


def bounded(argv, shell=False, stdout=subprocess.PIPE):
    """Runs a command in its own process group, killing the group after BATCH_TIMEOUT.
    Returns (returncode, stdout bytes, stderr text, rusage)."""
    proc = subprocess.Popen(argv, shell=shell, stdout=stdout, stderr=subprocess.PIPE,
                            start_new_session=True)
    timer = threading.Timer(BATCH_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    errors = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    reader.start()
    try:
        out = proc.stdout.read() if proc.stdout else b""
        reader.join()
        err = errors[0].decode(errors="replace") if errors else ""
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    code = os.waitstatus_to_exitcode(status)
    if code == -signal.SIGKILL:
        raise RuntimeError([f"killed after {BATCH_TIMEOUT} s without an end"])
    if code != 0:
        raise RuntimeError((err or out.decode(errors="replace")).strip().splitlines()[-1:]
                           or [f"exit {code}"])
    return out, usage


def run_measured(argv, shell=False):
    """Runs a command; returns its stdout. Raises with its last error line."""
    out, _ = bounded(argv, shell=shell)
    return out.decode()


def rss_of(argv, shell=False):
    """Peak RSS (KB) of one run, from wait4()."""
    _, usage = bounded(argv, shell=shell, stdout=subprocess.DEVNULL)
    return usage.ru_maxrss


def hyperfine(line, runs, prepare=None):
    """Times a shell line with hyperfine; returns the per-run seconds."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = ["hyperfine", "--runs", str(runs), "--style", "none", "--export-json", out.name]
        if prepare:
            argv += ["--prepare", prepare]
        argv.append(line)
        bounded(argv, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))["results"][0]["times"]


class Workload:
    """One row: how each contender runs it, how many times, what it is measured in."""

    def __init__(self, key, title, workload, args, lxc, reps, iterations, size=None, rss=False,
                 only=None, lxc_prepare=None, cleanup=None, whole_process=None, after=None):
        self.key, self.title, self.workload, self.args = key, title, workload, args
        self.lxc, self.reps, self.iterations, self.size = lxc, reps, iterations, size
        self.rss, self.only = rss, only  # None: every contender
        self.lxc_prepare, self.cleanup, self.whole_process = lxc_prepare, cleanup, whole_process
        self.after = after


def workloads(quick):
    w = WORK
    c = CONTAINER
    small = 1 if quick else None

    def n(full):
        return small or full

    site_size = 5 if quick else 50

    def fleet_line(width):
        one = ("lxc launch busybox bfl-lxc-$i -q && lxc exec bfl-lxc-$i -- true && "
               "lxc delete -f bfl-lxc-$i")
        if width <= 1:
            return f"for i in $(seq 10); do {one}; done"
        return f"seq 10 | xargs -P {width} -I@ sh -c '{one.replace('$i', '@')}'"

    rows = [
        Workload("start", "process start", None, [], "lxc version", n(5), n(20),
                 whole_process={"lxd-script": "{lxd_script} eval 1",
                                "pylxd": "{python} -c 'import pylxd'",
                                "floor": None}),
        Workload("first", "process start + first request", None, [], "lxc query /1.0", n(5),
                 n(20),
                 whole_process={"lxd-script": "{lxd_script} eval 'Client()'",
                                "pylxd": "{python} -c 'import pylxd; pylxd.Client()'",
                                "floor": "{floor} {socket} first-request 1"}),
        Workload("get", "GET one instance", "get", [c], f"lxc query /1.0/instances/{c}",
                 n(5), n(200)),
        Workload("all", "all() with 10 instances", "all", [],
                 "lxc query '/1.0/instances?recursion=1'", n(5), n(50)),
        # 200 empty containers in a project of their own, so the other rows list only theirs.
        Workload("all200", "all() with 200 instances", "all", ["bench-many"],
                 "lxc query '/1.0/instances?recursion=1&project=bench-many'", n(5), n(10)),
        Workload("all2", "all(#{recursion: 2}) with 10 instances", "all-state", [],
                 "lxc query '/1.0/instances?recursion=2'", n(5), n(20)),
        Workload("lifecycle", "create + start + stop + delete", "lifecycle", ["blc-{who}-{rep}"],
                 "lxc launch busybox blc-lxc -q && lxc stop -f blc-lxc && lxc delete blc-lxc",
                 n(3), n(2)),
        Workload("exec", "exec `true`", "exec", [c], f"lxc exec {c} -- true", n(5), n(30)),
        Workload("exec-process", "exec `true`, whole process", None, [], f"lxc exec {c} -- true",
                 n(5), n(20),
                 whole_process={
                     "lxd-script": "{lxd_script} eval 'Client().instances.get(\"%s\")"
                                   ".execute([\"true\"])'" % c,
                     "pylxd": "{python} -c 'import pylxd; "
                              "pylxd.Client().instances.get(\"%s\").execute([\"true\"])'" % c,
                     "floor": "{floor} {socket} exec 1 %s" % c}),
        Workload("stdout", "exec, 10 MB of stdout", "exec-stdout", [c, "10000000"],
                 f"lxc exec {c} -- head -c 10000000 /dev/zero > /dev/null", n(3), n(5),
                 rss=True),
        Workload("stdout-cb", "exec, 10 MB of stdout to a callback", "exec-stdout-callback",
                 [c, "10000000"], None, n(3), n(5), rss=True, only=["lxd-script"]),
        # LXD's record-output mode: neither pylxd nor lxc exec offers it.
        Workload("stdout-rec", "exec, 10 MB of stdout, `record_output`", "exec-stdout-recorded",
                 [c, "10000000"], None, n(3), n(5), rss=True, only=["lxd-script", "floor"]),
        Workload("stdin1", "exec, 1 MiB of stdin", "exec-stdin", [c, f"{w}/in-1m"],
                 f"lxc exec {c} -- wc -c < {w}/in-1m", n(3), n(5)),
        Workload("stdin64", "exec, 64 MiB of stdin", "exec-stdin", [c, f"{w}/in-64m"],
                 f"lxc exec {c} -- wc -c < {w}/in-64m", n(5), n(2), rss=True),
        Workload("push100", "push 100 MB", "push", [c, f"{w}/f-100m", "/root/f-100m"],
                 f"lxc file push {w}/f-100m {c}/root/f-100m", n(5), n(2), size=100 * MB,
                 rss=True),
        # Each pull writes a new file: the batch's cleanup removes the previous one.
        Workload("pull100", "pull 100 MB", "pull", [c, "/root/f-100m", f"{w}/out-{{who}}"],
                 f"lxc file pull {c}/root/f-100m {w}/out-lxc", n(10), 1, size=100 * MB,
                 rss=True, cleanup=f"rm -f {w}/out-*"),
        # The second pull of each batch replaces the first one's file.
        Workload("pull100r", "pull 100 MB over the previous copy", "pull",
                 [c, "/root/f-100m", f"{w}/out-{{who}}"],
                 f"lxc file pull {c}/root/f-100m {w}/out-lxc", n(5), n(2), size=100 * MB,
                 cleanup=f"rm -f {w}/out-*"),
        Workload("push1g", "push 1 GB", "push", [c, f"{w}/f-1g", "/root/f-1g"],
                 f"lxc file push {w}/f-1g {c}/root/f-1g", n(2), 1, size=1000 * MB, rss=True),
        Workload("pull1g", "pull 1 GB", "pull", [c, "/root/f-1g", f"{w}/out-{{who}}"],
                 f"lxc file pull {c}/root/f-1g {w}/out-lxc", n(4), 1, size=1000 * MB, rss=True,
                 cleanup=f"rm -f {w}/out-*",
                 # Snapshots of a dir pool copy the whole rootfs: leave no gigabytes behind.
                 after=f"lxc exec {c} -- rm -f /root/f-1g /root/f-100m"),
        Workload("rpush", "recursive push, 500 small files", "recursive-push",
                 [c, f"{w}/tree", "/root/tree-{who}"],
                 f"lxc file push -r {w}/tree {c}/root/lxc-push/", n(3), 1),
        Workload("rpull", "recursive pull, 500 small files", "recursive-pull",
                 [c, "/root/tree", f"{w}/pulled-{{who}}"],
                 f"lxc file pull -r {c}/root/tree {w}/pulled-lxc", n(3), 1,
                 lxc_prepare=f"rm -rf {w}/pulled-lxc && mkdir {w}/pulled-lxc",
                 cleanup=f"rm -rf {w}/pulled-*"),
        # pylxd has no backups; each contender makes an uncompressed backup, streams it to a
        # file and deletes it, as `lxc export --compression none` does.
        Workload("backup", "backup export, 100 MB instance", "backup-export",
                 ["bench-bk", f"{w}/out-{{who}}.tar"],
                 f"lxc export bench-bk {w}/out-lxc.tar --compression none", n(3), 1,
                 size=100 * MB, rss=True, only=["lxd-script", "lxc", "floor"],
                 cleanup=f"rm -f {w}/out-*"),
        Workload("snapshot", "snapshot create + delete", "snapshot", [c],
                 f"lxc snapshot {c} bench-lxc && lxc delete {c}/bench-lxc", n(3), n(3)),
        Workload("fleet1", "fleet of 10, sequential", "fleet", ["bfs-{who}-{rep}", "10", "1"],
                 fleet_line(1), 1, 1),
        Workload("fleet10", "fleet of 10, 10 at a time", "fleet", ["bfp-{who}-{rep}", "10", "10"],
                 fleet_line(10), n(5), 1),
        # Desired state, lxd-script alone (no other contender has it): plan and a no-op apply
        # of a standing 50-instance site, and a site made and started from nothing beside the
        # same work done by fleet::launch (both 8 at a time).
        Workload("siteplan", "plan of a 50-instance site (no change)", "site-plan",
                 ["bench-site", "50"], None, n(3), n(5), only=["lxd-script"]),
        Workload("sitenoop", "apply of a 50-instance site (no change)", "site-noop",
                 ["bench-site", "50"], None, n(3), n(5), only=["lxd-script"]),
        Workload("siteapply", f"apply of a {site_size}-instance site from nothing", "site-apply",
                 ["default", str(site_size), "bsa-{rep}"], None, 1, 1, only=["lxd-script"]),
        Workload("fleetlaunch", f"fleet::launch of the same {site_size} instances", "fleet-launch",
                 ["default", str(site_size), "bfa-{rep}"], None, 1, 1, only=["lxd-script"]),
    ]
    if quick:
        # The 1 GB rows take a minute and run what the 100 MB rows run; the 100 MB file they
        # would remove goes after the last 100 MB row instead.
        rows = [r for r in rows if r.key not in ("push1g", "pull1g")]
        for r in rows:
            if r.key == "pull100r":
                r.after = f"lxc exec {c} -- rm -f /root/f-100m"
    return rows


def measure(tools, server, row, who, rep):
    """One batch of one contender: (per-op seconds, peak RSS KB or None)."""
    fill = {"who": who, "rep": rep}
    args = [a.format(**fill) for a in row.args]
    if row.whole_process is not None and who != server.cli:
        template = row.whole_process.get(who)
        if template is None:
            return None, None
        line = template.format(lxd_script=tools.lxd_script, python=tools.python,
                               floor=tools.floor, socket=tools.socket)
        return hyperfine(line, row.iterations), None
    if who == server.cli:
        if row.lxc is None:
            return None, None
        line = server.cli_line(row.lxc)
        times = hyperfine(line, row.iterations, server.cli_line(row.lxc_prepare))
        rss = rss_of(line, shell=True) if row.rss else None
        return times, rss
    argv = tools.command(who, row.workload, row.iterations, args)
    out = run_measured(argv)
    times = json.loads(out.strip().splitlines()[-1])["times"]
    rss = None
    if row.rss:
        rss = rss_of(tools.command(who, row.workload, 1, args))
    return times, rss


def fmt_time(seconds):
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--python", required=True)
    parser.add_argument("--only", help="comma-separated workload keys")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--servers", default="lxd,incus",
                        help="comma-separated: lxd (every workload), incus (the core ones)")
    args = parser.parse_args()
    tools = Tools(args)
    known = servers()
    sections = []
    for key in args.servers.split(","):
        server = known[key]
        rows = [r for r in workloads(args.quick) if server.rows is None or r.key in server.rows]
        if args.only:
            keys = args.only.split(",")
            rows = [r for r in rows if r.key in keys]
        if rows:
            log(f"on {server.title}")
            sections.append((server, rows, measure_all(tools, server, rows)))
    write_results(args, sections)


def measure_all(tools, server, rows):
    """Every row with every contender of one server, interleaved; the samples by row key."""
    tools.socket = server.socket
    contenders = server.contenders
    results = {}
    for row in rows:
        samples = {who: [] for who in contenders}
        rss = {who: None for who in contenders}
        failed = {}
        log(f"{row.title}: {row.reps} × {row.iterations}")
        # Start each workload on a quiet disk: earlier ones leave gigabytes to write back.
        subprocess.run(["sync"])
        for rep in range(row.reps):
            turn = rep % len(contenders)
            order = contenders[turn:] + contenders[:turn]  # interleaved, rotating
            for who in order:
                only = (contenders if row.only is None
                        else [server.cli if w == "lxc" else w for w in row.only])
                if who not in only or who in failed:
                    continue
                try:
                    times, peak = measure(tools, server, row, who, rep)
                except RuntimeError as e:
                    failed[who] = str(e.args[0][0] if e.args and e.args[0] else e)[:120]
                    log(f"  {who} failed: {failed[who]}")
                    continue
                finally:
                    if row.cleanup:
                        subprocess.run(row.cleanup, shell=True)
                    if row.size:
                        # Each transfer batch starts on a quiet disk, not in another's write-back.
                        subprocess.run(["sync"])
                if times is not None:
                    samples[who].extend(times)
                if peak is not None:
                    rss[who] = max(rss[who] or 0, peak)
        if row.after:
            subprocess.run(row.after, shell=True)
        results[row.key] = (row, samples, rss, failed)
        summary = ", ".join(f"{w} {fmt_time(statistics.median(s))}"
                            for w, s in samples.items() if s)
        log(f"  {summary}")
    return results


def server_version(server):
    try:
        out = subprocess.run([server.cli, "query", "/1.0"], capture_output=True,
                             check=True).stdout
        return json.loads(out)["environment"]["server_version"]
    except (subprocess.CalledProcessError, KeyError, ValueError, FileNotFoundError):
        return "unknown"


def write_results(args, sections):
    versions = "; ".join(f"{s.title} {server_version(s)}" for s, _, _ in sections)
    lines = [
        "# Benchmarks: lxd-script against pylxd, the lxc and incus CLIs and a minimal client",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"
        f" with `scripts/bench/run{' --quick' if args.quick else ''}`; {versions};"
        f" {os.cpu_count()} cores; pylxd {pylxd_version(args.python)}.",
        "Medians (min in brackets) over every sample of the interleaved repetitions; ratios are"
        " lxd-script's median over the other's (below 1 is faster; for throughput, above 1"
        " is faster). lxc and incus run as whole processes under hyperfine; the others time"
        " themselves in-process. `floor` is scripts/bench/floor: raw HTTP and websockets on one"
        " keep-alive unix socket, no library logic.",
    ]
    for server, rows, results in sections:
        lines += table(server, rows, results)
    lines.append("")
    text = "\n".join(lines)
    print(text)
    notes_path = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes_path):
        text += "\n" + open(notes_path).read()
    with open(args.results, "w") as f:
        f.write(text)
    log(f"wrote {args.results}")


def table(server, rows, results):
    """The Markdown table of one server's rows."""
    contenders = server.contenders
    others = contenders[1:]
    lines = [
        "",
        f"## On {server.title} (`{server.cli}` is its CLI)",
        "",
        "| workload | " + " | ".join(contenders) + " | "
        + " | ".join(f"÷ {o}" for o in others)
        + " | peak RSS (" + " / ".join(contenders) + ") |",
        "|---" * (1 + len(contenders) + len(others) + 1) + "|",
    ]
    for row in rows:
        _, samples, rss, failed = results[row.key]
        med = {w: statistics.median(s) if s else None for w, s in samples.items()}
        low = {w: min(s) if s else None for w, s in samples.items()}
        cells = []
        for who in contenders:
            if who in failed:
                cells.append(f"fails: {failed[who]}")
            elif med[who] is None:
                cells.append("—")
            elif row.size:
                cells.append(f"{row.size / med[who] / MB:.0f} MB/s ({fmt_time(med[who])})")
            else:
                cells.append(f"{fmt_time(med[who])} ({fmt_time(low[who])})")
        ratios = []
        for other in others:
            if med["lxd-script"] and med[other] and other not in failed:
                r = med["lxd-script"] / med[other]
                ratios.append(f"{1 / r:.2f}× thr" if row.size else f"{r:.2f}")
            else:
                ratios.append("—")
        peaks = " / ".join(f"{rss[w] / 1024:.0f} MB" if rss[w] else "—" for w in contenders)
        lines.append(f"| {row.title} | " + " | ".join(cells + ratios) + f" | {peaks if row.rss else ''} |")
    return lines


def pylxd_version(python):
    out = subprocess.run([python, "-c", "import pylxd; print(pylxd.__version__)"],
                         capture_output=True)
    return out.stdout.decode().strip() or "unknown"


if __name__ == "__main__":
    main()
