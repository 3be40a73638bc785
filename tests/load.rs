//! Load against one daemon (its own test binary, so no other test shares the daemon meanwhile).

mod common;

use common::{Cleanup, script_ok, unique};

/// 1,000 short execs, 16 at a time: zero errors and every output exactly right.
#[test]
fn a_thousand_execs_in_parallel() {
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
