//! The public scripting API is a promise to scripts: `lxd-script api` must match the committed reference,
//! so no change to it goes unnoticed. After an intended change, update the snapshot with
//! `target/debug/lxd-script api > tests/api-reference.txt` and commit it with the change.

use std::process::Command;

/// The reference the engine generates equals the committed snapshot.
#[test]
fn the_api_matches_its_snapshot() {
    let out = Command::new(env!("CARGO_BIN_EXE_lxd-script"))
        .arg("api")
        .output()
        .expect("run lxd-script api");
    assert!(out.status.success());
    let generated = String::from_utf8_lossy(&out.stdout);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api-reference.txt"
    ))
    .unwrap_or_default();
    if generated != committed {
        let first_difference = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(committed.lines().count()));
        panic!(
            "the scripting API changed (first difference at line {}).\n\
             If that was intended, run `target/debug/lxd-script api > tests/api-reference.txt` \
             and commit the snapshot with the change.",
            first_difference + 1
        );
    }
}

/// `--definitions DIR` writes `.d.rhai` files for editors, in the script's types: every
/// declaration ends its line with `;`, no return type is a Rust `Result`, and our signatures
/// read as scripts call them.
#[test]
fn definitions_are_written_for_editors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new(env!("CARGO_BIN_EXE_lxd-script"))
        .args(["api", "--definitions"])
        .arg(dir.path())
        .status()
        .expect("run");
    assert!(status.success());
    let ours = std::fs::read_to_string(dir.path().join("__static__.d.rhai")).expect("read");
    assert!(ours.starts_with("module static;\n"), "{}", &ours[..200]);
    for expected in [
        "fn get(_: Instances, _: String) -> Instance;",
        "fn Client(target: String) -> Client;",
        "fn Client() -> Client;",
        "fn get name(_: Instance) -> ?;",
        "fn all(_: Instances) -> Array;",
        "fn execute(_: Instance, _: ?, _: Map) -> ExecResult;",
        "op +(timestamp, int) -> timestamp;",
    ] {
        assert!(ours.lines().any(|l| l == expected), "missing: {expected}");
    }
    for line in ours.lines() {
        if line.starts_with("fn ") || line.starts_with("op ") {
            assert!(line.ends_with(';'), "unfinished declaration: {line}");
            assert!(
                !line.contains("EvalAltResult") && !line.contains("Result<"),
                "{line}"
            );
        }
    }
}

/// `docs/api.md` is what `lxd-script api --markdown` prints: the Markdown reference can never
/// drift from the engine.
#[test]
fn the_markdown_reference_is_current() {
    let out = Command::new(env!("CARGO_BIN_EXE_lxd-script"))
        .args(["api", "--markdown"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let checked_in = std::fs::read_to_string("docs/api.md").expect("docs/api.md");
    assert!(
        generated == checked_in,
        "docs/api.md differs from `lxd-script api --markdown`: run \
         `target/debug/lxd-script api --markdown > docs/api.md` and commit it with the change"
    );
    for section in ["\n## Globals\n", "\n## Instance\n", "\n## Plan\n"] {
        assert!(generated.contains(section), "no {section:?}");
    }
}
