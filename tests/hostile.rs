//! Reliability, round two (issue: interrupted transfers, hung execs, hostile servers and inputs):
//! each test shows one fault or input and its outcome, as the README's Reliability section
//! lists them. Fakes stand in where a daemon cannot show the fault.

mod common;

use common::{Needs, lxd_script, script_ok};

/// Durations too big for the clock are refused with `InvalidArgument`, never a panic (exit 101).
#[test]
fn huge_durations_are_refused_not_a_panic() {
    for code in [
        "sleep(1e300)",
        "wait_until(1e300, || true)",
        "wait_until(1, 1e300, || true)",
        "Client(#{timeout: 1e300})",
    ] {
        let run = lxd_script(&["eval", code]);
        assert_eq!(run.code, 1, "{code}: {run:?}");
        assert!(
            run.stderr.contains("InvalidArgument")
                && run.stderr.contains("from 0 to 1000000000")
                && run.stderr.contains("1e300"),
            "{code}: {}",
            run.stderr
        );
    }
    let run = lxd_script(&["--timeout", "1e300", "eval", "1"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("not 1e300"), "{}", run.stderr);
    let negative = lxd_script(&["eval", "sleep(-1)"]);
    assert!(negative.stderr.contains("not -1"), "{}", negative.stderr);

    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = common::unique("huge");
    let _cleanup = common::Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"let c = Client();
           let e = error_of(|| c.events().next(1e300));
           check_eq(e.kind, "InvalidArgument", "events().next");
           let i = c.instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);
           let e = error_of(|| i.execute(["true"], #{{timeout: 1e20}}));
           check_eq(e.kind, "InvalidArgument", "execute");
           let e = error_of(|| i.execute(["true"], #{{timeout: -1}}));
           check(e.message.contains("not -1"), e.message);"#
    ));
}
