//! The cookbook's recipes (`scripts/cookbook/*.rhai`, explained in `docs/cookbook.md`), each run
//! as a user runs it, on instances made for the test; what each recipe promises is checked on
//! the server afterwards.

mod common;

use std::process::Command;

use common::{Cleanup, Needs, Run, binary, script_ok, unique};

/// Runs a recipe with its arguments (and extra environment) against this pass's server.
fn recipe(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    recipe_on(&[], name, args, env)
}

/// `recipe` with options before `run` (`--remote NAME`).
fn recipe_on(options: &[&str], name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let path = format!(
        "{}/scripts/cookbook/{name}.rhai",
        env!("CARGO_MANIFEST_DIR")
    );
    binary()
        .args(options)
        .arg("run")
        .arg(path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run lxd-script")
        .into()
}

/// Busybox containers named `names`, started unless listed in `stopped`, on `remote`
/// (`Client(remote)`; "" for this pass's server).
fn containers(remote: &str, names: &[&str], stopped: &[&str]) {
    let client = if remote.is_empty() {
        "Client()".to_owned()
    } else {
        format!("Client(\"{remote}\")")
    };
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let stopped = stopped
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    script_ok(&format!(
        r#"let c = {client};
           parallel([{list}], |n| {{
               let i = c.instances.create(#{{name: n, source: #{{type: "image", alias: "busybox"}}}}, true);
               if ![{stopped}].contains(n) {{ i.start(true); }}
           }});"#
    ));
}

/// Removes a project and its instances from a remote of the lxc configuration when dropped.
struct ProjectCleanup {
    remote: &'static str,
    project: String,
}

impl Drop for ProjectCleanup {
    fn drop(&mut self) {
        let lxc = |args: &[&str]| Command::new("lxc").args(args).output();
        let target = format!("{}:", self.remote);
        if let Ok(out) = lxc(&[
            "list",
            &target,
            "--project",
            &self.project,
            "--format",
            "csv",
            "--columns",
            "n",
        ]) {
            for name in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = lxc(&[
                    "delete",
                    "--force",
                    &format!("{target}{name}"),
                    "--project",
                    &self.project,
                ]);
            }
        }
        let _ = lxc(&["project", "delete", &format!("{target}{}", self.project)]);
    }
}

/// A CI environment per branch: the project is made from the branch name, the checks pass,
/// `KEEP` keeps it, a rerun repairs a file that drifted, and the project is then removed.
#[test]
fn ci_env_per_branch() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let branch = format!("T-{}/Login", std::process::id());
    let project = format!("ci-t-{}-login", std::process::id());
    let _cleanup = ProjectCleanup {
        remote: common::server().remote(),
        project: project.clone(),
    };
    let kept = recipe("ci-env", &[&branch], &[("KEEP", "1")]);
    assert_eq!(kept.code, 0, "{kept:?}");
    assert_eq!(kept.stdout.matches("ok   ").count(), 3, "{kept:?}");
    assert!(
        kept.stdout.contains(&format!("{project}: kept")),
        "{kept:?}"
    );
    script_ok(&format!(
        r#"Client().with_project("{project}").instances.get("app").files.put("/srv/app/VERSION", "drifted\n");"#
    ));
    let run = recipe("ci-env", &[&branch], &[]);
    assert_eq!(
        run.code, 0,
        "the drifted file is rewritten by apply: {run:?}"
    );
    assert!(
        run.stdout.contains(&format!("{project}: removed")),
        "{run:?}"
    );
    script_ok(&format!(
        r#"check(!Client().projects.exists("{project}"), "the project is gone");"#
    ));
}

/// Nightly rotation keeps the newest `user.nightly.keep` nightly-* snapshots of each chosen
/// instance, leaves other snapshots alone, and reports an instance with a bad setting without
/// stopping the others.
#[test]
fn snapshot_rotation_keeps_the_newest() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (a, b, bad) = (unique("rot"), unique("rot"), unique("rot"));
    let _cleanup = Cleanup::new("main", &[a.as_str(), b.as_str(), bad.as_str()]);
    containers("", &[&a, &b, &bad], &[&a, &b, &bad]);
    script_ok(&format!(
        r#"let c = Client();
           for n in ["{a}", "{b}"] {{ let i = c.instances.get(n); i.config["user.nightly.keep"] = "2"; i.save(true); }}
           let i = c.instances.get("{bad}"); i.config["user.nightly.keep"] = "none"; i.save(true);
           c.instances.get("{a}").snapshots.create("manual", false, true);"#
    ));
    for _ in 0..3 {
        let run = recipe("snapshot-rotation", &[], &[]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stdout
                .contains(&format!("{bad}: FAILED: ErrorArithmetic")),
            "{run:?}"
        );
        assert!(
            run.stdout.contains(&format!("{a}: ")) && run.stdout.contains(&format!("{b}: ")),
            "{run:?}"
        );
    }
    script_ok(&format!(
        r#"let c = Client();
           for n in ["{a}", "{b}"] {{
               let names = c.instances.get(n).snapshots.all().map(|s| s.name);
               check_eq(names.filter(|s| s.starts_with("nightly-")).len(), 2, n);
           }}
           check(c.instances.get("{a}").snapshots.exists("manual"), "other snapshots are kept");"#
    ));
}

/// A rolling upgrade stops at the first instance whose check fails, restores it, and leaves
/// the rest alone; once fixed, a rerun upgrades all.
#[test]
fn rolling_upgrade_restores_and_stops() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let prefix = unique("roll");
    let names: Vec<String> = (1..=3).map(|n| format!("{prefix}-{n}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _cleanup = Cleanup::new("main", &refs);
    containers("", &refs, &[]);
    script_ok(&format!(
        r#"let c = Client();
           for n in ["{}", "{}"] {{ c.instances.get(n).files.put("/etc/healthy", "yes"); }}"#,
        names[0], names[2]
    ));
    let upgrade = "echo v2 > /etc/version";
    let check = "test -f /etc/healthy || { echo not healthy >&2; exit 1; }";
    let run = recipe("rolling-upgrade", &[&prefix, upgrade, check], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "{}: the health check exited with 1: not healthy",
            names[1]
        )),
        "{run:?}"
    );
    let versions = |expected: [&str; 3]| {
        script_ok(&format!(
            r#"let c = Client();
               let expected = [{}];
               let names = ["{}", "{}", "{}"];
               for k in 0..3 {{
                   let i = c.instances.get(names[k]);
                   let v = if i.files.exists("/etc/version") {{ i.files.get("/etc/version").as_string() }} else {{ "none" }};
                   check_eq(v, expected[k], names[k]);
                   check_eq(i.snapshots.all().len(), 0, "no snapshot is left");
               }}"#,
            expected.map(|e| format!("{e:?}")).join(", "),
            names[0],
            names[1],
            names[2]
        ));
    };
    versions(["v2\n", "none", "none"]);
    script_ok(&format!(
        r#"Client().instances.get("{}").files.put("/etc/healthy", "yes");"#,
        names[1]
    ));
    let run = recipe("rolling-upgrade", &[&prefix, upgrade, check], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("all 3 upgraded"), "{run:?}");
    versions(["v2\n", "v2\n", "v2\n"]);
}

/// Evacuating a cluster member moves its instances to the other member (running ones running
/// again), and restore brings them back; a second evacuate finds nothing left to move.
#[test]
fn evacuate_and_restore_a_member() {
    if common::testbed_for(Needs::Lxd("the cluster is LXD's")).is_none() {
        return;
    }
    let (up, down) = (unique("evac"), unique("evac"));
    let _cleanup = Cleanup::new("cluster", &[up.as_str(), down.as_str()]);
    script_ok(&format!(
        r#"let c = Client("cluster");
           for n in ["{up}", "{down}"] {{
               let i = c.instances.create(#{{name: n, source: #{{type: "image", alias: "busybox"}}}}, #{{wait: true, target: "m1"}});
               if n == "{up}" {{ i.start(true); }}
           }}"#
    ));
    let placed = |member: &str| {
        script_ok(&format!(
            r#"let c = Client("cluster");
               for n in ["{up}", "{down}"] {{ check_eq(c.instances.get(n).location, "{member}", n); }}
               check_eq(c.instances.get("{up}").status, "Running", "running again");
               check_eq(c.instances.get("{down}").status, "Stopped", "stays stopped");"#
        ));
    };
    let cluster = ["--remote", "cluster"];
    let run = recipe_on(&cluster, "evacuate", &["m1", "evacuate"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    placed("m2");
    let again = recipe_on(&cluster, "evacuate", &["m1", "evacuate"], &[]);
    assert!(
        again.stdout.contains("evacuate: 0 instance(s) moved"),
        "{again:?}"
    );
    let run = recipe_on(&cluster, "evacuate", &["m1", "restore"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    placed("m1");
    let nope = recipe_on(&cluster, "evacuate", &["m9", "evacuate"], &[]);
    assert_eq!(nope.code, 2, "{nope:?}");
    assert!(nope.stdout.contains("no member m9"), "{nope:?}");
}

/// A local tree reaches every running instance of the prefix, the same everywhere, with its
/// symlink; a rerun updates it.
#[test]
fn push_tree_into_many() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let prefix = unique("tree");
    let names: Vec<String> = (1..=3).map(|n| format!("{prefix}-{n}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _cleanup = Cleanup::new("main", &refs);
    containers("", &refs, &[]);
    let tree = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tree.path().join("css")).expect("mkdir");
    std::fs::write(tree.path().join("index.html"), "<h1>hi</h1>\n").expect("write");
    std::fs::write(tree.path().join("css/site.css"), "h1 {}\n").expect("write");
    std::os::unix::fs::symlink("index.html", tree.path().join("home.html")).expect("symlink");
    let local = tree.path().to_str().expect("utf-8");
    for _ in 0..2 {
        let run = recipe("push-tree", &[local, "/srv/www", &prefix], &[]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.contains(": 2 file(s) in 3 instance(s)")
                && run.stdout.contains("; 0 differ"),
            "{run:?}"
        );
    }
    script_ok(&format!(
        r#"let i = Client().instances.get("{}");
           check_eq(i.files.get("/srv/www/css/site.css").as_string(), "h1 {{}}\n", "content");
           check_eq(i.execute(["readlink", "/srv/www/home.html"]).stdout, "index.html\n", "symlink");"#,
        names[2]
    ));
}

/// Of two running instances, the one spinning a CPU is busy and the other idle; `stop` stops
/// only the idle one.
#[test]
fn idle_instances_are_found_and_stopped() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let prefix = unique("idle");
    let (busy, idle) = (format!("{prefix}-busy"), format!("{prefix}-quiet"));
    let _cleanup = Cleanup::new("main", &[busy.as_str(), idle.as_str()]);
    containers("", &[&busy, &idle], &[]);
    script_ok(&format!(
        r#"Client().instances.get("{busy}").execute(["sh", "-c", "setsid sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &"]);"#
    ));
    let run = recipe("idle", &[&prefix, "2", "stop"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("{idle}: 0")), "{run:?}");
    assert!(
        run.stdout.contains(&format!("stopped 1: [\"{idle}\"]")),
        "{run:?}"
    );
    script_ok(&format!(
        r#"let c = Client();
           check_eq(c.instances.get("{busy}").status, "Running", "busy");
           check_eq(c.instances.get("{idle}").status, "Stopped", "idle");"#
    ));
}

/// A project with a running and a stopped instance (a file, a snapshot each) is cloned to
/// another server with both, in their states; the source is unchanged; a rerun copies nothing.
#[test]
fn clone_a_project_to_another_server() {
    if common::testbed_for(Needs::Lxd("the other server, `second`, is LXD's")).is_none() {
        return;
    }
    let project = unique("proj");
    let _here = ProjectCleanup {
        remote: "main",
        project: project.clone(),
    };
    let _there = ProjectCleanup {
        remote: "second",
        project: project.clone(),
    };
    script_ok(&format!(
        r#"let c = Client();
           c.projects.create("{project}", #{{config: #{{"features.images": "false", "features.profiles": "false"}}}});
           let p = c.with_project("{project}");
           for n in ["web", "db"] {{
               let i = p.instances.create(#{{name: n, source: #{{type: "image", alias: "busybox"}}, profiles: ["default"]}}, true);
               i.start(true);
               i.files.put("/root/data", n);
               i.snapshots.create("before", false, true);
           }}
           p.instances.get("db").stop(true);"#
    ));
    let run = recipe("clone-project", &[&project, "second"], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("2 instance(s) cloned") && run.stdout.contains("; 0 there already"),
        "{run:?}"
    );
    script_ok(&format!(
        r#"let here = Client().with_project("{project}");
           let there = Client("second").with_project("{project}");
           check_eq(there.instances.get("web").status, "Running", "web");
           check_eq(there.instances.get("db").status, "Stopped", "db");
           check_eq(there.instances.get("web").files.get("/root/data").as_string(), "web", "data");
           check(there.instances.get("db").snapshots.exists("before"), "snapshot");
           check_eq(here.instances.all().map(|i| i.name).len(), 2, "no copy left here");
           check_eq(here.instances.get("web").status, "Running", "source untouched");"#
    ));
    let again = recipe("clone-project", &[&project, "second"], &[]);
    assert!(
        again.stdout.contains("0 instance(s) cloned") && again.stdout.contains("; 2 there already"),
        "{again:?}"
    );
}

/// Backups are exported, each imports and passes its check on another server, and nothing is
/// left there; a failing check is reported as not restoring.
#[test]
fn backups_verified_on_another_server() {
    if common::testbed_for(Needs::Lxd("the other server, `second`, is LXD's")).is_none() {
        return;
    }
    let prefix = unique("bk");
    let names: Vec<String> = (1..=2).map(|n| format!("{prefix}-{n}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _cleanup = Cleanup::new("main", &refs);
    containers("", &refs, &[]);
    script_ok(&format!(
        r#"let c = Client();
           for n in ["{}", "{}"] {{ let i = c.instances.get(n); i.files.put("/root/data", n); i.snapshots.create("s", false, true); }}"#,
        names[0], names[1]
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_str().expect("utf-8");
    let run = recipe(
        "verify-backups",
        &[&prefix, "second", dir_arg, "test -s /root/data"],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.matches("restores, with 1 snapshot(s)").count(),
        2,
        "{run:?}"
    );
    let tarballs = std::fs::read_dir(dir.path()).expect("read dir").count();
    assert_eq!(tarballs, 2, "the exported tarballs stay");
    let failing = recipe(
        "verify-backups",
        &[&prefix, "second", dir_arg, "test -s /root/missing"],
        &[],
    );
    assert_eq!(failing.code, 1, "{failing:?}");
    assert_eq!(
        failing
            .stdout
            .matches("DOES NOT RESTORE: the check exited with 1")
            .count(),
        2,
        "{failing:?}"
    );
    script_ok(&format!(
        r#"let there = Client("second");
           for n in ["{}", "{}"] {{ check(!there.instances.exists("verify-" + n), "trial removed"); }}
           for n in ["{}", "{}"] {{ check_eq(Client().instances.get(n).backups.all().len(), 0, "server backups removed"); }}"#,
        names[0], names[1], names[0], names[1]
    ));
}
