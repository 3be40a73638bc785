//! Desired state: `client.plan(site)`, `client.apply(site)` and `lxd-script plan|apply FILE`,
//! on the real servers.

mod common;

use common::{Cleanup, Needs, lxd_script, script, script_ok};

/// The `lxc` command on this pass's server (Incus through its HTTPS remote).
fn lxc(args: &[&str]) -> String {
    let out = std::process::Command::new("lxc")
        .args(args)
        .output()
        .expect("lxc");
    assert!(out.status.success(), "lxc {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A site of its own for one test: a profile, a network, a volume and an instance that uses
/// all three, runs, and has a file.
fn site(tag: &str, role: &str) -> String {
    format!(
        r#"#{{
            profiles: #{{ "{tag}-p": #{{ description: "web tier", config: #{{ "limits.memory": "256MB" }} }} }},
            networks: #{{ "{tag}n": #{{ type: "bridge", config: #{{ "ipv4.address": "none", "ipv6.address": "none" }} }} }},
            volumes: #{{ "default/{tag}-v": #{{ config: #{{ size: "16MB" }} }} }},
            instances: #{{
                "{tag}-i": #{{
                    source: #{{ type: "image", alias: "busybox" }},
                    profiles: ["default", "{tag}-p"],
                    config: #{{ "user.role": "{role}" }},
                    devices: #{{
                        eth1: #{{ type: "nic", network: "{tag}n", name: "eth1" }},
                        data: #{{ type: "disk", pool: "default", source: "{tag}-v", path: "/data" }},
                    }},
                    status: "Running",
                    files: #{{ "/etc/motd": #{{ content: "hello {role}\n", mode: "0640", uid: 0, gid: 0 }} }},
                }},
            }},
        }}"#
    )
}

/// Removes what a site test made, whatever happened.
struct SiteCleanup(String);

impl Drop for SiteCleanup {
    fn drop(&mut self) {
        let tag = &self.0;
        let _ = script(&format!(
            r#"let c = Client();
               for i in c.instances.all() {{ if i.name.starts_with("{tag}") {{ i.delete(#{{wait: true, force: true}}); }} }}
               for p in c.profiles.all() {{ if p.name.starts_with("{tag}") {{ p.delete(); }} }}
               let pool = c.storage_pools.get("default");
               for v in pool.volumes.all() {{ if v.name.starts_with("{tag}") {{ v.delete(); }} }}
               for n in c.networks.all() {{ if n.name.starts_with("{tag}") {{ n.delete(); }} }}"#
        ));
    }
}

/// Held by each test while it applies: a prune deletes every marked object of the kinds its
/// site names, those of the other tests included.
static ONE_SITE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_site_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_SITE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tag short enough for a network name (15 characters at most).
fn tag() -> String {
    format!("s{}", std::process::id() % 100_000)
}

/// From nothing, `apply` makes everything, marked; a second `apply` sends no change at all;
/// drift made with `lxc` shows in `plan` and `apply` repairs it.
#[test]
fn apply_creates_then_changes_nothing_then_repairs_drift() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let _one = one_site_at_a_time();
    let tag = format!("{}a", tag());
    let _cleanup = SiteCleanup(tag.clone());
    let site = site(&tag, "web");
    let out = script_ok(&format!(
        r#"let c = Client();
           let site = {site};
           let plan = c.plan(site);
           print(plan.changes.map(|ch| `${{ch.action}} ${{ch.kind}} ${{ch.name}}`));
           c.apply(site);
           let i = c.instances.get("{tag}-i");
           check_eq(i.status, "Running", "running");
           check_eq(i.config["user.lxd-script.managed"], "true", "marked");
           check_eq(i.files.get("/etc/motd").as_string(), "hello web\n", "the file");
           check_eq(c.profiles.get("{tag}-p").config["user.lxd-script.managed"], "true", "marked");
           check(c.plan(site).is_empty(), "nothing left to do");"#
    ));
    assert_eq!(
        out.trim(),
        format!(
            "[\"create network {tag}n\", \"create profile {tag}-p\", \"create volume default/{tag}-v\", \"create instance {tag}-i\"]"
        )
    );
    // A second apply: only reads.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("site.rhai");
    std::fs::write(&file, &site).expect("write");
    let run = lxd_script(&["-v", "apply", "--yes", file.to_str().expect("path")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("No changes"), "{run:?}");
    let requests: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("lxd: "))
        .collect();
    assert!(
        requests
            .iter()
            .all(|r| r.contains(" GET ") || r.contains(" HEAD ")),
        "a no-op apply only reads: {requests:#?}"
    );
    assert!(requests.len() <= 10, "one listing per kind: {requests:#?}");
    // Drift: changed with lxc, shown by plan (exit 3), repaired by apply.
    let remote = common::server().remote();
    lxc(&[
        "config",
        "set",
        &format!("{remote}:{tag}-i"),
        "user.role",
        "db",
    ]);
    let planned = lxd_script(&["plan", file.to_str().expect("path")]);
    assert_eq!(planned.code, 3, "{planned:?}");
    assert!(
        planned.stdout.contains(&format!(
            "~ update instance {tag}-i\n    config.user.role: \"db\" -> \"web\"\n"
        )),
        "{planned:?}"
    );
    let applied = lxd_script(&["apply", "--yes", file.to_str().expect("path")]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let fixed = lxc(&["config", "get", &format!("{remote}:{tag}-i"), "user.role"]);
    assert_eq!(fixed.trim(), "web");
    assert_eq!(lxd_script(&["plan", file.to_str().expect("path")]).code, 0);
}

/// `prune` deletes what apply made and the site no longer names, never what it did not make;
/// a change LXD cannot make in place is `-/+ replace`, refused (with the plan, before any
/// change) unless `replace: true`.
#[test]
fn prune_only_marked_and_replace_only_when_allowed() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let _one = one_site_at_a_time();
    let tag = format!("{}b", tag());
    let _cleanup = SiteCleanup(tag.clone());
    let unmarked = format!("{tag}-hand");
    let _instance = Cleanup::new("main", &[&format!("{tag}-i")]);
    let out = script_ok(&format!(
        r#"let c = Client();
           c.profiles.create("{unmarked}");
           c.apply(#{{ profiles: #{{ "{tag}-old": #{{}}, "{tag}-keep": #{{}} }},
                      instances: #{{ "{tag}-i": #{{ source: #{{ type: "image", alias: "busybox" }} }} }} }});
           let plan = c.plan(#{{ profiles: #{{ "{tag}-keep": #{{}} }} }}, #{{prune: true}});
           print(plan);
           c.apply(#{{ profiles: #{{ "{tag}-keep": #{{}} }} }}, #{{prune: true}});
           check(!c.profiles.exists("{tag}-old"), "the marked profile is pruned");
           check(c.profiles.exists("{unmarked}"), "the unmarked one stays");
           check(c.instances.exists("{tag}-i"), "instances were not named: not pruned");
           let vm = #{{ instances: #{{ "{tag}-i": #{{ source: #{{ type: "image", alias: "busybox" }}, type: "virtual-machine" }} }} }};
           print(c.plan(vm));
           let e = error_of(|| c.apply(vm));
           check_eq(e.kind, "InvalidArgument", e.message);
           check(e.message.contains("replace: true"), e.message);
           check_eq(c.instances.get("{tag}-i").type, "container", "nothing changed");"#
    ));
    assert!(
        out.contains(&format!("- delete profile {tag}-old\n")),
        "{out}"
    );
    assert!(!out.contains(&unmarked), "{out}");
    assert!(
        out.contains(&format!(
            "-/+ replace instance {tag}-i\n    type: \"container\" -> \"virtual-machine\"\n"
        )),
        "{out}"
    );
    script_ok(&format!(r#"Client().profiles.get("{unmarked}").delete();"#));
}

/// A new image for an instance is `-/+ replace`: refused without `replace`, and with it the
/// instance is remade from the new image, its files written and its status reached again.
#[test]
fn a_new_image_replaces_the_instance_when_allowed() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let image = std::env::var("LXD_TESTBED_IMAGE").expect("the test bed's image");
    let _one = one_site_at_a_time();
    let tag = format!("{}d", tag());
    let _cleanup = SiteCleanup(tag.clone());
    // The test bed's image again, compressed differently: another fingerprint, same contents.
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.tar.gz");
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{image}' | gzip -1 -n > '{}'",
            other.display()
        ))
        .status()
        .expect("gzip");
    assert!(ok.success());
    let site = |alias: &str| {
        format!(
            r#"#{{ instances: #{{ "{tag}-i": #{{ source: #{{ type: "image", alias: "{alias}" }}, status: "Running",
                   files: #{{ "/etc/motd": #{{ content: "from {alias}\n" }} }} }} }} }}"#
        )
    };
    let out = script_ok(&format!(
        r#"let c = Client();
           let img = c.images.create("{}", #{{aliases: ["{tag}-img"]}});
           c.apply({});
           let before = c.instances.get("{tag}-i").config["volatile.base_image"];
           let plan = c.plan({});
           print(plan);
           let e = error_of(|| c.apply({}));
           check(e.message.contains("replace: true"), e.message);
           check_eq(c.instances.get("{tag}-i").config["volatile.base_image"], before, "unchanged when refused");
           c.apply({}, #{{replace: true}});
           let i = c.instances.get("{tag}-i");
           check_eq(i.config["volatile.base_image"], img.fingerprint, "remade from the new image");
           check_eq([i.status, i.files.get("/etc/motd").as_string()], ["Running", "from {tag}-img\n"], "converged");
           check(c.plan({}).is_empty(), "nothing left to do");
           i.delete(#{{wait: true, force: true}});
           img.delete(true);"#,
        other.display(),
        site("busybox"),
        site(&format!("{tag}-img")),
        site(&format!("{tag}-img")),
        site(&format!("{tag}-img")),
        site(&format!("{tag}-img")),
    ));
    assert!(
        out.contains(&format!("-/+ replace instance {tag}-i\n")) && out.contains("source"),
        "{out}"
    );
}

/// A volume apply made, now wanted in another pool, is `-/+ replace` (LXD cannot change a
/// volume's pool in place): refused without `replace`, made there and removed here with it. A
/// volume apply did not make is never the one replaced: the other pool's is a plain create.
#[test]
fn a_volume_in_another_pool_is_a_replace() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let _one = one_site_at_a_time();
    let tag = format!("{}e", tag());
    let _cleanup = SiteCleanup(tag.clone());
    let source = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let pool = format!("{tag}-pool2");
    struct PoolCleanup(String);
    impl Drop for PoolCleanup {
        fn drop(&mut self) {
            let _ = script(&format!(
                r#"let c = Client();
                   if c.storage_pools.exists("{0}") {{
                       let p = c.storage_pools.get("{0}");
                       for v in p.volumes.all() {{ if v.type == "custom" {{ v.delete(); }} }}
                       p.delete();
                   }}"#,
                self.0
            ));
        }
    }
    let _pool = PoolCleanup(pool.clone());
    let out = script_ok(&format!(
        r#"let c = Client();
           let p2 = c.storage_pools.create(#{{name: "{pool}", driver: "dir", config: #{{source: "{}"}}}});
           let default = c.storage_pools.get("default");
           c.apply(#{{ volumes: #{{ "default/{tag}-v": #{{ config: #{{ size: "8MB" }} }} }} }});
           default.volumes.create(#{{name: "{tag}-hand", config: #{{}}}});
           let moved = #{{ volumes: #{{ "{pool}/{tag}-v": #{{ config: #{{ size: "8MB" }} }},
                                     "{pool}/{tag}-hand": #{{}} }} }};
           print(c.plan(moved, #{{prune: true}}));
           let e = error_of(|| c.apply(moved, #{{prune: true}}));
           check(e.message.contains("replace: true"), e.message);
           check(default.volumes.exists("custom", "{tag}-v"), "nothing changed when refused");
           c.apply(moved, #{{prune: true, replace: true}});
           check(p2.volumes.exists("custom", "{tag}-v") && !default.volumes.exists("custom", "{tag}-v"), "moved");
           check(p2.volumes.exists("custom", "{tag}-hand") && default.volumes.exists("custom", "{tag}-hand"), "the hand-made one stays");
           check(c.plan(moved, #{{prune: true}}).is_empty(), "converged");
           default.volumes.get("custom", "{tag}-hand").delete();"#,
        source.path().display()
    ));
    assert!(
        out.contains(&format!(
            "-/+ replace volume {pool}/{tag}-v\n    pool: \"default\" -> \"{pool}\"\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("+ create volume {pool}/{tag}-hand\n")),
        "{out}"
    );
    assert!(!out.contains("- delete"), "{out}");
}

/// A failure mid-apply stops what depends on it, the rest is made, and the error says what
/// was done, what failed and what was skipped; applying a fixed site goes on from there.
#[test]
fn a_failure_reports_done_failed_skipped_and_a_rerun_converges() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let _one = one_site_at_a_time();
    let tag = format!("{}c", tag());
    let _cleanup = SiteCleanup(tag.clone());
    let broken = |memory: &str| {
        format!(
            r#"#{{ profiles: #{{ "{tag}-ok": #{{}}, "{tag}-bad": #{{ config: #{{ "limits.memory": "{memory}" }} }} }},
                  instances: #{{ "{tag}-i": #{{ source: #{{ type: "image", alias: "busybox" }}, profiles: ["default", "{tag}-bad"] }} }} }}"#
        )
    };
    let out = script_ok(&format!(
        r#"let c = Client();
           let e = error_of(|| c.apply({}));
           check_eq(e.kind, "Apply", e.message);
           print(e.done); print(e.failed.map(|f| f.change)); print(e.skipped);
           print(e.message);
           c.apply({});
           check(c.instances.exists("{tag}-i"), "made on the rerun");
           check(c.plan({}).is_empty(), "converged");"#,
        broken("lots"),
        broken("64MB"),
        broken("64MB")
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("[\"create profile {tag}-ok\"]"), "{out}");
    assert_eq!(lines[1], format!("[\"create profile {tag}-bad\"]"), "{out}");
    assert_eq!(lines[2], format!("[\"create instance {tag}-i\"]"), "{out}");
    assert!(lines[3].starts_with("1 of 3 changes failed:"), "{out}");
}

/// A site applied to a cluster places its instances on the members their `target` names, and
/// a changed `target` moves the instance there (it comes back running).
#[test]
fn a_cluster_site_places_and_moves_by_target() {
    if common::testbed_for(Needs::Lxd("it needs LXD's cluster")).is_none() {
        return;
    }
    let _one = one_site_at_a_time();
    let name = common::unique("placed");
    let _cleanup = Cleanup::new("cluster", &[&name]);
    let site = |member: &str| {
        format!(
            r#"#{{ instances: #{{ "{name}": #{{ source: #{{ type: "image", alias: "busybox" }}, status: "Running", target: "{member}" }} }} }}"#
        )
    };
    let out = script_ok(&format!(
        r#"let c = Client("cluster");
           c.apply({});
           check_eq(c.instances.get("{name}").location, "m2", "placed on m2");
           print(c.plan({}));
           c.apply({});
           let i = c.instances.get("{name}");
           check_eq(i.location, "m1", "moved to m1");
           check_eq(i.status, "Running", "running again");
           check(c.plan({}).is_empty(), "converged");"#,
        site("m2"),
        site("m1"),
        site("m1"),
        site("m1")
    ));
    assert!(
        out.contains(&format!(
            "~ update instance {name}\n    target: \"m2\" -> \"m1\"\n"
        )),
        "{out}"
    );
}

/// Projects are made first (marked, with their config) and pruned last.
#[test]
fn projects_are_made_first_and_pruned_last() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let _one = one_site_at_a_time();
    let tag = format!("{}d", tag());
    let out = script_ok(&format!(
        r#"let c = Client();
           let site = #{{ projects: #{{ "{tag}-proj": #{{ description: "a site's own", config: #{{ "features.images": "false" }} }} }},
                         profiles: #{{ "{tag}-p": #{{}} }} }};
           print(c.plan(site).changes.map(|ch| ch.kind));
           c.apply(site);
           let p = c.projects.get("{tag}-proj");
           check_eq(p.description, "a site's own", "made");
           check_eq(p.config["user.lxd-script.managed"], "true", "marked");
           check(c.plan(site).is_empty(), "nothing left to do");
           c.apply(#{{ projects: #{{}}, profiles: #{{}} }}, #{{prune: true}});
           check(!c.projects.exists("{tag}-proj"), "pruned");
           check(!c.profiles.exists("{tag}-p"), "pruned");"#
    ));
    assert_eq!(out.trim(), "[\"project\", \"profile\"]");
}

/// On a terminal `apply` shows the plan, in colour, and asks; anything but `yes` changes
/// nothing.
#[test]
fn apply_on_a_terminal_asks_first() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let _one = one_site_at_a_time();
    let tag = format!("{}e", tag());
    let _cleanup = SiteCleanup(tag.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("site.rhai");
    std::fs::write(
        &file,
        format!(r#"#{{ profiles: #{{ "{tag}-p": #{{}} }} }}"#),
    )
    .expect("write");
    let tmux = common::Tmux::start(
        &format!(
            "env {} {} apply {}; echo EXIT=$?; sleep 60",
            tb.env_words(),
            env!("CARGO_BIN_EXE_lxd-script"),
            file.display()
        ),
        100,
        20,
    );
    let screen = tmux.wait_for("Apply these changes?");
    assert!(
        screen.contains(&format!("+ create profile {tag}-p")),
        "{screen}"
    );
    tmux.keys("no");
    tmux.wait_for("nothing was changed");
    tmux.wait_for("EXIT=1");
    let colours = tmux.run(&["capture-pane", "-t", "t", "-p", "-e"]);
    assert!(
        colours.contains("\u{1b}[32m+ create profile"),
        "green on a terminal: {colours:?}"
    );
    assert_eq!(
        script_ok(&format!(r#"print(Client().profiles.exists("{tag}-p"));"#)).trim(),
        "false"
    );
}
