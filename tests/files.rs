//! Files: sizes, modes, owners, append, trees with symlinks, hostile trees, and a
//! 1 GiB push and pull in constant memory.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::OnceLock;

use common::{Cleanup, Needs, script_ok, unique};

/// One running busybox container shared by the file tests (each works under its own path).
fn container() -> &'static str {
    static SLOT: OnceLock<(String, Cleanup)> = OnceLock::new();
    common::shared_container(&SLOT, "files")
}

fn with_files(source: &str) -> String {
    script_ok(&format!(
        "let i = Client().instances.get(\"{}\");\nlet f = i.files;\n{source}",
        container()
    ))
}

/// put/get round trips of 0 B, 1 B and 64 KiB ± 1, strings and blobs.
#[test]
fn put_and_get_exact_bytes() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let dir = unique("sizes");
    with_files(&format!(
        r#"
        f.mk_dir("/srv/{dir}");
        for size in [0, 1, 65535, 65536, 65537] {{
            let data = blob(size, 0);
            for n in 0..size {{ data[n] = (n * 7) % 256; }}
            f.put(`/srv/{dir}/${{size}}`, data);
            check_eq(f.get(`/srv/{dir}/${{size}}`), data, `${{size}} bytes`);
        }}
        f.put("/srv/{dir}/text", "héllo\n");
        check_eq(f.get("/srv/{dir}/text").as_string(), "héllo\n", "text");
        let e = error_of(|| f.get("/srv/{dir}/missing"));
        check_eq(e.kind, "NotFound", "missing file");
        check_eq(error_of(|| f.get("/srv/{dir}")).kind, "InvalidArgument", "a directory is not a file");
        "#
    ));
}

/// Modes (int or octal string, always sent with a leading 0), uid/gid, append, mk_dir with
/// parents, list, exists, delete.
#[test]
fn modes_owners_append_and_directories() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let dir = unique("attrs");
    let out = with_files(&format!(
        r#"
        f.mk_dir("/srv/{dir}/a/b", #{{parents: true, mode: "0700", uid: 5, gid: 6}});
        f.put("/srv/{dir}/a/m1", "x", 0o640);
        f.put("/srv/{dir}/a/m2", "x", "644");
        f.put("/srv/{dir}/a/m3", "x", "0600", 1000, 1001);
        f.put("/srv/{dir}/a/m4", "x", #{{mode: 0o755, uid: 7, gid: 8}});
        f.put("/srv/{dir}/a/m4", "y", #{{append: true}});
        check_eq(f.get("/srv/{dir}/a/m4").as_string(), "xy", "appended");
        check_eq(error_of(|| f.put("/srv/{dir}/a/none", "z", #{{append: true}})).kind != (), true, "append needs a file");
        check_eq(error_of(|| f.put("/srv/{dir}/a/m5", "x", "rwx")).kind, "InvalidArgument", "bad mode");
        let names = f.list("/srv/{dir}/a");
        names.sort();
        print(names);
        check(f.exists("/srv/{dir}/a/b") && !f.exists("/srv/{dir}/nope"), "exists");
        check(f.delete_available(), "file_delete");
        f.delete("/srv/{dir}/a/m1");
        check(!f.exists("/srv/{dir}/a/m1"), "deleted");
        print(i.execute(["sh", "-c", "cd /srv/{dir}/a && stat -c '%n %a %u %g' b m2 m3 m4"]).stdout);
        "#
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#"["b", "m1", "m2", "m3", "m4"]"#);
    assert_eq!(
        &lines[1..5],
        ["b 700 5 6", "m2 644 0 0", "m3 600 1000 1001", "m4 755 7 8"]
    );
}

/// recursive_put then recursive_get: directories, files with modes, symlinks as symlinks
/// (relative ones inside the tree stay usable).
#[test]
fn trees_round_trip() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).expect("dirs");
    for n in 0..20 {
        std::fs::write(src.join(format!("f{n}")), format!("file {n}\n")).expect("write");
    }
    std::fs::write(src.join("sub/deeper/x"), "deep").expect("write");
    std::fs::set_permissions(src.join("f0"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    std::os::unix::fs::symlink("f1", src.join("rel")).expect("symlink");
    std::os::unix::fs::symlink("/etc/hostname", src.join("abs")).expect("symlink");
    let remote = format!("/srv/{}", unique("tree"));
    let back = work.path().join("back");
    with_files(&format!(
        r#"
        f.recursive_put("{src}", "{remote}", #{{uid: 5, gid: 6}});
        check_eq(i.execute(["readlink", "{remote}/rel"]).stdout, "f1\n", "symlink pushed as a symlink");
        check_eq(i.execute(["stat", "-c", "%a", "{remote}/f0", "{remote}/sub/deeper"]).stdout, "600\n755\n", "modes");
        check_eq(i.execute(["stat", "-c", "%u:%g", "{remote}/f0", "{remote}/sub/deeper"]).stdout, "5:6\n5:6\n", "owners");
        // Again over the existing tree: contents replaced, owners of what existed kept.
        i.execute(["sh", "-c", "echo old > {remote}/f2"]);
        f.recursive_put("{src}", "{remote}");
        check_eq(f.get("{remote}/f2").as_string(), "file 2\n", "replaced");
        check_eq(i.execute(["stat", "-c", "%u", "{remote}/f2"]).stdout, "5\n", "owner kept");
        check_eq(error_of(|| f.recursive_get("{remote}/f1", "{back}")).kind, "InvalidArgument", "a file is no tree");
        check_eq(error_of(|| f.recursive_get("/nonexistent", "{back}")).kind, "NotFound", "missing tree");
        f.recursive_get("{remote}", "{back}");
        "#,
        src = src.display(),
        back = back.display(),
    ));
    for n in 0..20 {
        let name = format!("f{n}");
        assert_eq!(
            std::fs::read(back.join(&name)).expect("pulled"),
            format!("file {n}\n").into_bytes()
        );
    }
    assert_eq!(
        std::fs::read(back.join("sub/deeper/x")).expect("deep"),
        b"deep"
    );
    assert_eq!(
        std::fs::metadata(back.join("f0")).expect("f0").mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_link(back.join("rel")).expect("rel"),
        Path::new("f1")
    );
    assert_eq!(
        std::fs::read(back.join("rel")).expect("through rel"),
        b"file 1\n"
    );
    assert!(
        std::fs::symlink_metadata(back.join("abs"))
            .expect("abs")
            .file_type()
            .is_symlink()
    );
}

/// A hostile tree: names with spaces and newlines, symlinks to absolute and relative paths
/// outside it, and a destination that already holds symlinks pointing outside. Nothing outside
/// the destination is written.
#[test]
fn hostile_trees_write_nothing_outside() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    std::fs::write(outside.join("victim"), "untouched").expect("victim");
    let dest = work.path().join("dest");
    std::fs::create_dir(&dest).expect("dest");
    // The destination already holds symlinks out of itself, named like entries of the tree.
    std::os::unix::fs::symlink(outside.join("victim"), dest.join("a file")).expect("symlink");
    std::os::unix::fs::symlink(&outside, dest.join("sub")).expect("symlink");
    let remote = format!("/srv/{}", unique("hostile"));
    with_files(&format!(
        r#"
        let r = i.execute(["sh", "-c", "mkdir -p '{remote}/sub' && cd '{remote}' && echo evil > 'a file' && printf x > \"$(printf 'new\nline')\" && echo evil > sub/victim && ln -s ../../../etc up && ln -s /etc/passwd abs && ln -s sub/victim inner"]);
        check_eq(r.exit_code, 0, r.stderr);
        f.recursive_get("{remote}", "{dest}");
        "#,
        dest = dest.display(),
    ));
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).expect("victim"),
        "untouched"
    );
    assert_eq!(
        std::fs::read_dir(&outside).expect("outside").count(),
        1,
        "nothing new outside"
    );
    let a_file = std::fs::symlink_metadata(dest.join("a file")).expect("a file");
    assert!(
        a_file.is_file(),
        "the symlink was replaced, not written through"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("a file")).expect("a file"),
        "evil\n"
    );
    assert!(
        std::fs::symlink_metadata(dest.join("sub"))
            .expect("sub")
            .is_dir()
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/victim")).expect("sub/victim"),
        "evil\n"
    );
    assert_eq!(
        std::fs::read(dest.join("new\nline")).expect("newline name"),
        b"x"
    );
    for link in ["up", "abs", "inner"] {
        let meta = std::fs::symlink_metadata(dest.join(link)).expect(link);
        assert!(meta.file_type().is_symlink(), "{link} stays a symlink");
    }
    assert_eq!(
        std::fs::read_link(dest.join("inner")).expect("inner"),
        Path::new("sub/victim")
    );
}

/// A 1 GiB file pushed and pulled in constant memory, byte-identical.
#[test]
fn one_gib_push_and_pull() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let work = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let big = work.path().join("big");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(1 << 30).expect("size");
    // Not all zeros: a pattern every 64 KiB, so a shifted or truncated copy is caught.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = file;
        for block in 0..(1u64 << 14) {
            f.seek(SeekFrom::Start(block << 16)).expect("seek");
            f.write_all(&block.to_le_bytes()).expect("mark");
        }
    }
    let back = work.path().join("back");
    let remote = format!("/srv/{}", unique("big"));
    let out = with_files(&format!(
        r#"
        check_eq(f.push("{big}", "{remote}"), 1073741824, "pushed");
        check_eq(f.pull("{remote}", "{back}"), 1073741824, "pulled");
        i.execute(["rm", "{remote}"]);
        let hwm = read_file("/proc/self/status").split("\n").filter(|l| l.starts_with("VmHWM:"))[0];
        let kb = hwm.split(":")[1];
        kb.trim();
        print(kb.split(" ")[0]);
        "#,
        big = big.display(),
        back = back.display(),
    ));
    let peak_kb: u64 = out.trim().parse().expect("VmHWM");
    assert!(
        peak_kb < 64 * 1024,
        "peak RSS {peak_kb} kB for 1 GiB each way"
    );
    let same = std::process::Command::new("cmp")
        .arg(&big)
        .arg(&back)
        .status()
        .expect("cmp");
    assert!(same.success(), "the pulled file differs");
    let names: Vec<String> = std::fs::read_dir(work.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
}

/// A failed pull leaves nothing under the final name, and no temporary file.
#[test]
fn failed_pulls_leave_nothing() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let target = work.path().join("target");
    with_files(&format!(
        r#"
        check_eq(error_of(|| f.pull("/nonexistent/file", "{target}")).kind, "NotFound", "missing");
        check_eq(error_of(|| f.pull("/srv", "{target}")).kind, "InvalidArgument", "a directory");
        check_eq(error_of(|| f.push("/nonexistent/local", "/tmp/x")).kind, "Local", "missing local file");
        "#,
        target = target.display()
    ));
    assert_eq!(std::fs::read_dir(work.path()).expect("dir").count(), 0);
}

/// A name that is not UTF-8 in the instance: LXD lists it mangled (U+FFFD), so it cannot be
/// fetched; the pull fails clearly, and nothing is written outside the destination.
#[test]
fn non_utf8_names_write_nothing_outside() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let dest = work.path().join("dest");
    let remote = format!("/srv/{}", unique("nonutf8"));
    let out = with_files(&format!(
        r#"
        i.execute(["sh", "-c", "mkdir -p '{remote}' && cd '{remote}' && echo ok > plain && touch \"$(printf 'bad\\377name')\""]);
        try {{ f.recursive_get("{remote}", "{dest}"); print("pulled"); }} catch (e) {{ print(e.kind); }}
        "#,
        dest = dest.display(),
    ));
    assert!(["pulled", "NotFound"].contains(&out.trim()), "{out}");
    let outside: Vec<String> = std::fs::read_dir(work.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        outside.iter().all(|n| n == "dest"),
        "written outside: {outside:?}"
    );
}
