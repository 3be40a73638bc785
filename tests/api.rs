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

/// `--definitions DIR` writes `.d.rhai` files for editors, with our types in them.
#[test]
fn definitions_are_written_for_editors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = Command::new(env!("CARGO_BIN_EXE_lxd-script"))
        .args(["api", "--definitions"])
        .arg(dir.path())
        .status()
        .expect("run");
    assert!(status.success());
    let mut all = String::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        all.push_str(&std::fs::read_to_string(entry.expect("entry").path()).expect("read"));
    }
    assert!(
        all.contains("fn execute(") && all.contains("Instance"),
        "{}",
        &all[..all.len().min(500)]
    );
}
