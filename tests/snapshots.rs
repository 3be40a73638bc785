//! Snapshots, restore and publish, against `main`.

mod common;

use common::{Cleanup, Needs, script_ok, unique};

/// create (waited and pending) → get → exists → all → rename → restore → delete; stateful
/// snapshots pass LXD's CRIU error through; expires_at is kept.
#[test]
fn snapshot_life_cycle() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("snaps");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    let out = script_ok(
        &r#"
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        let s0 = i.snapshots.create("s0", false, true);
        check_eq(s0.name, "s0", "name without the instance prefix");
        check_eq(s0.instance, "NAME", "instance");
        check(s0.created_at.len() > 0, "created_at");
        check_eq(s0.stateful, false, "stateless");
        check_eq(type_of(s0.config), "map", "config");
        check_eq(type_of(s0.devices), "map", "devices");
        check_eq(type_of(s0.expanded_config), "map", "expanded_config");
        check_eq(s0.profiles, ["default"], "profiles");
        check_eq(s0.architecture, "x86_64", "architecture");
        check(type_of(s0.last_used_at) == "string", "last_used_at");
        check_eq(s0.ephemeral, false, "ephemeral");
        check_eq(error_of(|| { s0.config = #{}; }).kind, "ReadOnly", "snapshot config is read-only");
        let s1 = i.snapshots.create("s1", #{expires_at: "2099-01-01T00:00:00Z"});
        check_eq(s1.expires_at.sub_string(0, 4), "2099", "a property read joins the pending create");
        s1.put(#{expires_at: "2098-01-01T00:00:00Z"});
        check_eq(s1.expires_at.sub_string(0, 4), "2098", "put, reloaded");
        check_eq(error_of(|| s1.put(#{description: "x"})).kind, "InvalidArgument", "only expires_at is written");
        check(i.snapshots.exists("s1"), "exists");
        check(!i.snapshots.exists("nope"), "does not exist");
        check_eq(error_of(|| i.snapshots.get("nope")).kind, "NotFound", "get missing");
        let names = i.snapshots.all().map(|s| s.name);
        names.sort();
        check_eq(names, ["s0", "s1"], "all");

        s1.rename("renamed");
        s1.wait();
        check_eq(s1.name, "renamed", "renamed after the join");
        check(i.snapshots.exists("renamed") && !i.snapshots.exists("s1"), "renamed on the server");
        check_eq(error_of(|| { s1.name = "x"; }).kind, "ReadOnly", "name is read-only");

        // Restore: a config change made after s0 goes away.
        i.config["user.after"] = "yes";
        i.save();
        s0.restore(true);
        i.sync();
        check(!("user.after" in i.config), "restored from s0");
        i.config["user.after"] = "again";
        i.save();
        i.restore_snapshot("s0", true);
        check(!("user.after" in i.config), "restore_snapshot reloads the instance");

        // A stateful snapshot needs CRIU: the server's message reaches the script. Incus first
        // wants migration.stateful on the instance, and says so.
        i.start(true);
        let e = error_of(|| i.snapshots.create("ram", true, true));
        if c.server.name == "incus" {
            check(e.message.contains("migration.stateful"), e.message);
            i.stop(true);
            i.config["migration.stateful"] = "true";
            i.save();
            i.start(true);
            e = error_of(|| i.snapshots.create("ram", true, true));
        }
        check_eq(e.kind, "OperationFailed", "stateful snapshot");
        print(e.message);

        s0.delete(true);
        check(!i.snapshots.exists("s0"), "deleted");
        i.snapshots.get("renamed").delete(true);
        check_eq(i.snapshots.all().len(), 0, "none left");
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name),
    );
    assert!(out.contains("CRIU"), "the server's own message: {out}");
}

/// Publishing an instance and a snapshot gives Image objects; a running instance cannot be
/// published, in LXD's words.
#[test]
fn publish_instances_and_snapshots() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("publish");
    let alias = unique("alias");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    let out = script_ok(
        &r#"
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        let img = i.publish(#{wait: true, aliases: ["ALIAS"], properties: #{role: "test"}});
        check_eq(img.fingerprint.len(), 64, "fingerprint");
        check_eq(img.properties.role, "test", "properties");
        check_eq(img.aliases.map(|a| a.name), ["ALIAS"], "aliases");
        check_eq(img.public, false, "private by default");
        check(img.size > 0, "size");
        img.delete();

        let s = i.snapshots.create("snap", false, true);
        let img2 = s.publish(true, true);
        check_eq(img2.public, true, "public");
        check_eq(img2.to_map().fingerprint, img2.fingerprint, "to_map");
        img2.delete(true);

        // Not waiting returns () and leaves the operation on the instance; the next call joins it.
        check_eq(i.publish(#{aliases: ["ALIAS-later"]}), (), "no wait");
        i.wait();

        i.start(true);
        let e = error_of(|| i.publish(false, true));
        print(e.message);
        i.delete(#{wait: true, force: true});
        "#
        .replace("NAME", &name)
        .replace("ALIAS", &alias),
    );
    assert!(out.to_lowercase().contains("running"), "{out}");
    // The image published without waiting exists once joined: remove it by its alias.
    let removed = std::process::Command::new("lxc")
        .args([
            "image",
            "delete",
            &format!("{}:{alias}-later", common::server().remote()),
        ])
        .output()
        .expect("lxc image delete");
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
}
