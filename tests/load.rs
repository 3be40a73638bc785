//! Load against one daemon (its own test binary, so no other test shares the daemon meanwhile).

mod common;

use common::{Cleanup, Needs, script_ok, unique};

/// 1,000 short execs, 16 at a time: zero errors and every output exactly right.
#[test]
fn a_thousand_execs_in_parallel() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("load");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    let out = script_ok(
        &r#"
        let i = Client().instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.start(true);
        let items = [];
        for n in 0..1000 { items.push(n); }
        let t = timestamp();
        let outputs = parallel(items, 16, |n| i.execute(["echo", `${n}`]).stdout);
        let wrong = 0;
        for n in 0..1000 { if outputs[n] != `${n}` + "\n" { wrong += 1; } }
        check_eq(wrong, 0, "every output exactly right");
        print(t.elapsed);
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name),
    );
    eprintln!("1000 execs, 16 at a time: {}s", out.trim());
}

/// 20 concurrent transfers of 16 MB each, both ways: every file byte-identical, memory bounded.
#[test]
fn twenty_concurrent_transfers() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("xfer");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    for n in 0..20u8 {
        let data: Vec<u8> = (0..16_000_000u32).map(|i| (i % 251) as u8 ^ n).collect();
        std::fs::write(dir.path().join(format!("in-{n}")), data).expect("write");
    }
    let out = script_ok(
        &r#"
        let i = Client().instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.start(true);
        let items = [];
        for n in 0..20 { items.push(n); }
        parallel(items, 20, |n| { i.files.push(`DIR/in-${n}`, `/root/f-${n}`); i.files.pull(`/root/f-${n}`, `DIR/out-${n}`); });
        let hwm = read_file("/proc/self/status").split("\n").filter(|l| l.starts_with("VmHWM:"))[0];
        let kb = hwm.split(":")[1];
        kb.trim();
        print(kb.split(" ")[0]);
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name)
        .replace("DIR", &dir.path().display().to_string()),
    );
    for n in 0..20 {
        let a = std::fs::read(dir.path().join(format!("in-{n}"))).expect("in");
        let b = std::fs::read(dir.path().join(format!("out-{n}"))).expect("out");
        assert!(a == b, "file {n} differs");
    }
    let peak_kb: u64 = out.trim().parse().expect("VmHWM");
    // 20 × 16 MB = 320 MB moved each way; streaming keeps the process far below that.
    assert!(peak_kb < 128 * 1024, "peak RSS {peak_kb} kB");
}

/// The event stream under a flood keeps at most its queue (1,024 by default) and counts what it
/// dropped, instead of growing.
#[test]
fn an_event_flood_is_bounded() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("flood");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    let out = script_ok(
        &r#"
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.start(true);
        let ev = c.events(["operation"]);
        let items = [];
        for n in 0..500 { items.push(n); }
        parallel(items, 16, |n| i.execute(["true"]));
        sleep(1);
        let kept = ev.pending;
        check(kept <= 1024, `kept ${kept}`);
        check(ev.dropped > 0, "a flood of over 1,024 events drops some");
        print(`${kept} kept, ${ev.dropped} dropped`);
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name),
    );
    eprintln!("event flood: {}", out.trim());
}
