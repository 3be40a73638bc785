//! `parallel`, `wait_until` and the stdlib modules, against `main`.

mod common;

use common::{Cleanup, Needs, script_ok, unique};

/// Results come back in input order; failures are collected into one Parallel error after
/// the other calls finished; `max` bounds the calls in flight.
#[test]
fn parallel_orders_results_and_collects_failures() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    script_ok(
        r#"
        let items = [];
        for n in 0..50 { items.push(n); }
        check_eq(parallel(items, |n| { sleep((50 - n) / 1000.0); n * n })[49], 2401, "input order");
        let e = error_of(|| parallel([1, 2, 3, 4, 5], 2, |x| if x % 2 == 0 { throw `even ${x}` } else { x }));
        check_eq(e.kind, "Parallel", "kind");
        check_eq(e.errors.map(|f| f.item), [2, 4], "each failure with its item");
        check_eq(e.errors[0].error, "even 2", "the thrown value");
        check_eq(e.details.results, [1, (), 3, (), 5], "the others finished");
        check_eq(error_of(|| parallel([1], 0, |x| x)).kind, "InvalidArgument", "max 0");
        check_eq(parallel([], |x| x), [], "no items");
        // Each call has its own copy of what the function captured: no data race.
        let base = 10;
        check_eq(parallel([1, 2, 3], |x| { base += x; base }), [11, 12, 13], "own copies");
        check_eq(base, 10, "the caller's variable is untouched");
        let t = timestamp();
        parallel([1, 2, 3, 4], 4, |x| sleep(0.3));
        check(t.elapsed < 1.0, `4 sleeps of 0.3 s at once took ${t.elapsed}`);
        "#,
    );
}

/// wait_until returns the first truthy value, or throws Timeout.
#[test]
fn wait_until_returns_or_times_out() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    script_ok(
        r#"
        let t = timestamp();
        check_eq(wait_until(5, 0.05, || if t.elapsed > 0.2 { "ready" } else { () }), "ready", "value");
        let e = error_of(|| wait_until(0.3, 0.1, || false));
        check_eq(e.kind, "Timeout", "kind");
        check(t.elapsed < 2.0, "bounded");
        "#,
    );
}

/// wait::running, wait::file, wait::ipv4/ipv6 (on an address set by hand: no traffic), and
/// their Timeout, which says what did not happen.
#[test]
fn wait_module() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("wait");
    let net = format!("tw{}", std::process::id() % 100_000);
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(
        &r#"
        import "wait" as wait;
        let c = Client();
        let n = c.networks.create("NET", #{type: "bridge", config: #{"ipv4.address": "none", "ipv6.address": "none"}});
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"},
                                     devices: #{eth0: #{type: "nic", nictype: "bridged", parent: "NET", name: "eth0"}}}, true);
        i.start();
        let r = wait::running(i, 30);
        check_eq(r.status, "Running", "running");
        let e = error_of(|| wait::file(i, "/tmp/flag", 0.5));
        check_eq(e.kind, "Timeout", "no file yet");
        check_eq(e.message, "/tmp/flag did not appear in NAME after 0.5 s", "what did not happen");
        i.execute(["touch", "/tmp/flag"]);
        check(wait::file(i, "/tmp/flag", 5), "file");
        let e = error_of(|| wait::ipv4(i, 0.5));
        check_eq(e.kind, "Timeout", "no address yet");
        check_eq(e.message, "NAME had no global IPv4 address after 0.5 s", "what did not happen");
        i.execute(["ip", "addr", "add", "192.0.2.10/24", "dev", "eth0"]);
        i.execute(["ip", "-6", "addr", "add", "2001:db8::10/64", "dev", "eth0"]);
        check_eq(wait::ipv4(i, 10), "192.0.2.10", "ipv4");
        check_eq(wait::ipv6(i, 10), "2001:db8::10", "ipv6");
        i.delete(#{wait: true, force: true});
        n.delete();
        "#
        .replace("NAME", &name)
        .replace("NET", &net),
    );
}

/// fleet::ensure is idempotent (creates, starts, leaves running ones alone), launch runs in
/// parallel, destroy removes only what exists.
#[test]
fn fleet_module() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let names: Vec<String> = (0..3).map(|_| unique("fleet")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _cleanup = Cleanup::new("main", &refs);
    let list = format!("{:?}", names);
    script_ok(
        &r#"
        import "fleet" as fleet;
        let c = Client();
        let names = LIST;
        let cfg = |name| #{name: name, source: #{type: "image", alias: "busybox"}};
        let first = fleet::ensure(c, cfg.call(names[0]));
        check_eq(first.status, "Running", "created and started");
        first.stop(true);
        check_eq(fleet::ensure(c, cfg.call(names[0])).status, "Running", "started again");
        let all = fleet::launch(c, names.map(cfg));
        check_eq(all.map(|i| i.name), names, "launched, in order");
        check(all.all(|i| i.status == "Running"), "all running");
        check_eq(fleet::destroy(c, names + ["no-such-instance"]), names, "destroyed what existed");
        check(!names.some(|n| c.instances.exists(n)), "gone");
        "#
        .replace("LIST", &list),
    );
}

/// snapshot::rotate keeps the newest N with its prefix; snapshot::guard restores on failure
/// and rethrows, and cleans up its snapshot either way.
#[test]
fn snapshot_module() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("snapmod");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(
        &r#"
        import "snapshot" as snapshot;
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.snapshots.create("manual", false, true);
        let kept = [];
        for n in 0..4 { kept = snapshot::rotate(i, "auto-", 2); }
        check_eq(kept.len(), 2, "two kept");
        let names = i.snapshots.all().map(|s| s.name);
        check(names.contains("manual"), "other snapshots untouched");
        check_eq(names.filter(|n| n.starts_with("auto-")).len(), 2, "old ones deleted");
        i.start(true);
        i.files.put("/root/v", "1");
        check_eq(snapshot::guard(i, || { i.files.put("/root/v", "2"); "ok" }), "ok", "a good change stays");
        check_eq(i.files.get("/root/v").as_string(), "2", "kept");
        let e = error_of(|| snapshot::guard(i, || { i.files.put("/root/v", "3"); throw "bad change"; }));
        check_eq(e, "bad change", "rethrown");
        check_eq(i.files.get("/root/v").as_string(), "2", "restored");
        check(!i.snapshots.all().some(|s| s.name.starts_with("guard-")), "guard snapshots removed");
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name),
    );
}

/// Ctrl-C stops every call of `parallel` in flight at once, with status 130.
#[test]
fn ctrl_c_stops_every_parallel_call() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let script = format!(
        r#"parallel([1, 2, 3, 4, 5, 6], 6, |n| {{ if n == 6 {{ write_file("{}", ""); }} sleep(60); }});
           print("not reached");"#,
        ready.display()
    );
    let (out, took) = common::interrupt(&["eval", &script], || ready.exists());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert_eq!(out.stdout, "");
}
