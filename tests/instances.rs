//! Client, instance managers and Instance, against `main`,
//! `second` over HTTPS and the cluster.

mod common;

use common::{Cleanup, Needs, script_ok, unique};

/// Replaces `NAME` in a script by a unique instance name, with clean-up on `remote`.
fn named(remote: &'static str, what: &str, source: &str) -> (String, Cleanup, String) {
    let name = unique(what);
    let cleanup = Cleanup::new(remote, &[name.as_str()]);
    let source = source.replace("NAME", &name);
    (name, cleanup, source)
}

/// The Client's properties and methods.
#[test]
fn client_properties() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let out = script_ok(
        &r#"
        let c = Client();
        check(c.trusted, "trusted");
        check(!c.server_clustered, "main is standalone");
        check(c.api_extensions.len() > 100, "extensions");
        check(c.has_api_extension("instances"), "has instances");
        check(!c.has_api_extension("no_such_extension"), "lacks a made-up one");
        check_eq(error_of(|| c.assert_has_api_extension("no_such_extension")).kind, "ExtensionMissing", "assert");
        check(c.host_info.environment.server_version.starts_with("VERSION"), "host_info");
        check_eq(c.server.name, "SERVER", "server.name");
        check_eq(c.server.version, c.host_info.environment.server_version, "server.version");
        check_eq(`${c.server}`, `SERVER ${c.server.version}`, "server as text");
        check_eq(c.project, "default", "project");
        c.projects.create("PROJECT");
        let p = c.with_project("PROJECT");
        check_eq(p.project, "PROJECT", "with_project");
        check_eq(p.host_info.environment.project, "PROJECT", "host_info is read in the project");
        check_eq(c.host_info.environment.project, "default", "and the original's in its own");
        check_eq(c.project, "default", "the original keeps its project");
        c.projects.get("PROJECT").delete();
        check_eq(error_of(|| c.with_project("PROJECT")).kind, "NotFound", "a missing project");
        print(c.endpoint);
        "#
        .replace("SERVER", common::server().name())
        .replace("VERSION", common::server().version_prefix())
        .replace("PROJECT", &common::unique("proj")),
    );
    assert_eq!(out.trim(), format!("unix:{}", tb.socket().display()));
}

/// create → get → exists → all → state changes → state() → rename → delete, with the type
/// filters of `containers` and `virtual_machines`.
#[test]
fn instance_life_cycle() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let renamed = unique("renamed");
    let (_, _cleanup, source) = named(
        "main",
        "life",
        &r#"
        let c = Client();
        check(!c.instances.exists("NAME"), "not there yet");
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        check_eq(i.name, "NAME", "name");
        check_eq(i.status, "Stopped", "created stopped");
        check_eq(i.type, "container", "type");
        check(c.instances.exists("NAME"), "exists");
        check(c.containers.exists("NAME"), "a container");
        check(!c.virtual_machines.exists("NAME"), "not a VM");
        check_eq(error_of(|| c.virtual_machines.get("NAME")).kind, "NotFound", "VM manager");
        check(c.instances.all().some(|x| x.name == "NAME"), "in all()");
        check(c.virtual_machines.all().all(|x| x.type == "virtual-machine"), "all() filters");

        i.start(true);
        check_eq(i.status, "Running", "started (reloaded after the wait)");
        check_eq(i.status_code, 103, "status_code");
        let st = i.state();
        check_eq(st.status, "Running", "state().status");
        check(st.pid > 0, "state().pid");
        check(type_of(st.network) == "map" && "lo" in st.network, "state().network");
        i.freeze(true);
        check_eq(i.status, "Frozen", "frozen");
        i.unfreeze(#{wait: true});
        check_eq(i.status, "Running", "unfrozen");
        i.restart(30, true, true);
        check_eq(i.status, "Running", "restarted");
        i.stop(#{wait: true, force: true, timeout: 10});
        check_eq(i.status, "Stopped", "stopped");

        i.rename("RENAMED", true);
        check_eq(i.name, "RENAMED", "renamed");
        check(!c.instances.exists("NAME"), "old name gone");
        i.delete(true);
        check(!c.instances.exists("RENAMED"), "deleted");
        print("ok");
        "#
        .replace("RENAMED", &renamed),
    );
    let _cleanup_renamed = Cleanup::new("main", &[renamed.as_str()]);
    assert_eq!(script_ok(&source).trim(), "ok");
}

/// wait=false leaves the operation pending; the next call (or wait()) joins it.
#[test]
fn pending_operations_are_joined() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup, source) = named(
        "main",
        "pending",
        r#"
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}});
        i.start();                 // joins the create first, then leaves the start pending
        i.wait(30);
        check_eq(i.status, "Running", "joined start");
        i.stop();
        check_eq(i.status, "Stopped", "a property read joins too");
        // An empty container cannot start: the start fails in the background.
        let j = c.instances.create(#{name: "NAME-x", source: #{type: "none"}}, true);
        j.start();
        let e = error_of(|| j.wait());
        check_eq(e.kind, "OperationFailed", "a failed pending operation throws at the join");
        check(e.operation != (), "with its operation id");
        j.delete(true);
        i.delete();
        i.wait();
        check(!c.instances.exists("NAME"), "deleted after the join");
        print("ok");
        "#,
    );
    let _cleanup_empty = Cleanup::new("main", &[format!("{name}-x").as_str()]);
    assert_eq!(script_ok(&source).trim(), "ok");
}

/// What a script starts without waiting and never joins is joined as the run ends: a stop
/// left pending has happened when the run returns, and a rename that fails after its call
/// returned is said on stderr and fails the run.
#[test]
fn unjoined_operations_are_joined_at_the_end() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup, source) = named(
        "main",
        "unjoined",
        r#"let i = Client().instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
           i.start(true);
           i.stop(#{force: false, wait: false});
           print("last line");"#,
    );
    assert_eq!(script_ok(&source).trim(), "last line");
    script_ok(&format!(
        r#"check_eq(Client().instances.get("{name}").status, "Stopped", "stopped before the run ended");
           let i = Client().instances.get("{name}");
           i.start(true);"#
    ));
    let run = common::script(&format!(
        r#"let i = Client().instances.get("{name}");
           i.rename("{name}-renamed");     // LXD renames only a stopped instance: fails later
           print("last line");"#
    ));
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout.trim(), "last line");
    assert!(
        run.stderr.contains("(Renaming instance)")
            && run
                .stderr
                .contains("started without waiting, failed: OperationFailed: "),
        "{run:?}"
    );
}

/// Attributes: writable ones saved (also by in-place edits), read-only ones refused, unknown
/// server fields kept, saves send only what changed.
#[test]
fn attributes_and_saves() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (name, _cleanup, source) = named(
        "main",
        "attrs",
        r#"
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"},
                                     config: #{"user.a": "1", "user.gone": "x"}}, true);
        i.config["user.a"] = "2";              // in place
        i.config.remove("user.gone");          // a removal (sent as a whole PUT)
        i.description = "described";
        i.ephemeral = false;
        i.profiles = ["default"];
        i.save();
        let again = c.instances.get("NAME");
        check_eq(again.config["user.a"], "2", "in-place edit saved");
        check(!("user.gone" in again.config), "removed key saved");
        check_eq(again.description, "described", "description saved");

        i.config["user.b"] = "3";
        i.sync();                               // drops the unsaved edit
        check(!("user.b" in i.config), "sync drops local edits");

        let e = error_of(|| { i.name = "other"; });
        check_eq(e.kind, "ReadOnly", "name is read-only");
        check(e.message.contains("rename()"), "says what to do");
        check_eq(error_of(|| { i.status = "Running"; }).kind, "ReadOnly", "status");
        check_eq(error_of(|| { i.expanded_config["x"] = "y"; }).kind, "ReadOnly", "in-place on read-only");
        check(i.expanded_config.keys().len() > 0, "reading through a method is fine");

        i.patch(#{config: #{"user.patched": "yes"}});
        check_eq(i.config["user.patched"], "yes", "patch merges and reloads");
        check_eq(i.config["user.a"], "2", "others kept");
        let whole = #{architecture: i.architecture, config: #{"user.only": "1"}, devices: #{},
                      ephemeral: false, profiles: ["default"], description: "put"};
        i.put(whole);
        check_eq(i.config["user.only"], "1", "put");
        check(!("user.a" in i.config), "put replaces");
        check("volatile.base_image" in i.config, "the server's volatile keys stay");
        check_eq(error_of(|| i.patch(#{status: "Running"})).kind, "InvalidArgument", "read-only");

        let m = i.to_map();
        for key in ["name", "status", "config", "devices", "expanded_devices", "created_at", "last_used_at", "location", "project", "stateful"] {
            check(key in m, `to_map has ${key}`);
        }
        print(to_json(m.keys()));
        "#,
    );
    let out = script_ok(&source);
    // Every field LXD sends is kept, including ones the API does not name.
    let mut keys: Vec<String> = serde_json::from_str(out.trim()).expect("keys");
    let raw = std::process::Command::new("lxc")
        .args([
            "query",
            &format!("{}:/1.0/instances/{name}", common::server().remote()),
        ])
        .output()
        .expect("lxc query");
    let raw: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&raw.stdout).expect("instance JSON");
    let mut expected: Vec<String> = raw.keys().cloned().collect();
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);
}

/// Two copies saved in turn: the second is refused with PreconditionFailed, also for objects
/// that came from all() (which carry no ETag). LXD's ETag covers config, devices, profiles,
/// ephemeral and architecture (not the description), so the copies race on config.
#[test]
fn stale_copies_are_refused() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (_, _cleanup, source) = named(
        "main",
        "stale",
        r#"
        let c = Client();
        c.instances.create(#{name: "NAME", source: #{type: "none"}}, true);
        let a = c.instances.get("NAME");
        let b = c.instances.get("NAME");
        let listed = c.instances.all().filter(|x| x.name == "NAME")[0];
        a.config["user.who"] = "first";
        a.save();
        b.config["user.who"] = "second";
        let e = error_of(|| b.save());
        check_eq(e.kind, "PreconditionFailed", "stale copy");
        check_eq(e.status_code, 412, "status 412");
        listed.config["user.who"] = "third";
        check_eq(error_of(|| listed.save()).kind, "PreconditionFailed", "stale listed copy");
        b.sync();
        b.config["user.who"] = "second";
        b.save();
        check_eq(c.instances.get("NAME").config["user.who"], "second", "after sync the save works");
        let fresh = c.instances.all().filter(|x| x.name == "NAME")[0];
        fresh.config["user.who"] = "listed";
        fresh.save();
        check_eq(c.instances.get("NAME").config["user.who"], "listed", "a fresh listed copy saves");
        c.instances.get("NAME").delete(true);
        print("ok");
        "#,
    );
    assert_eq!(script_ok(&source).trim(), "ok");
}

/// A name that is taken: both servers refuse a create in its operation, with different messages
/// (LXD 5.0: "already exists"; Incus: "UNIQUE constraint failed"), and it is `Conflict` on both,
/// with the server's text kept; a rename onto a taken name is refused at once (Conflict, 409).
/// The server picks a name when none is given. A missing image alias is `NotFound` on both
/// (LXD answers 404 at once; Incus fails the operation).
#[test]
fn conflicts_and_generated_names() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (_, _cleanup, source) = named(
        "main",
        "conflict",
        r#"
        let c = Client();
        c.instances.create(#{name: "NAME", source: #{type: "none"}}, true);
        let e = error_of(|| c.instances.create(#{name: "NAME", source: #{type: "none"}}, true));
        check_eq(e.kind, "Conflict", "duplicate create");
        check_eq(e.status_code, 409, "409");
        check(e.message.contains("'NAME' already exists (the server said: "), e.message);
        // Waited later, through the pending operation, the same.
        let later = c.instances.create(#{name: "NAME", source: #{type: "none"}});
        check_eq(error_of(|| later.wait()).kind, "Conflict", "duplicate create, joined later");
        let e = error_of(|| c.instances.create(#{name: "NAME-y", source: #{type: "image", alias: "no-such-alias"}}, true));
        check_eq(e.kind, "NotFound", `missing alias: ${e.message}`);
        check(!c.instances.exists("NAME-y"), "nothing created");
        let anon = c.instances.create(#{source: #{type: "none"}}, true);
        check(anon.name.len() > 0, "LXD picked a name");
        check(c.instances.exists(anon.name), "and it exists");
        let e = error_of(|| anon.rename("NAME", true));
        check_eq(e.kind, "Conflict", "rename onto a taken name");
        check_eq(e.status_code, 409, "409");
        check(e.message.contains("already in use"), e.message);
        anon.delete(true);
        c.instances.get("NAME").delete(true);
        print("ok");
        "#,
    );
    assert_eq!(script_ok(&source).trim(), "ok");
}

/// delete(#{force: true}) stops a running instance first; a plain delete of a running one is
/// LXD's error, verbatim.
#[test]
fn forced_delete_stops_first() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let (_, _cleanup, source) = named(
        "main",
        "force",
        r#"
        let c = Client();
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.start(true);
        let e = error_of(|| i.delete(true));
        check(e.kind == "ApiError" || e.kind == "OperationFailed", `running delete: ${e.kind}`);
        check(e.message.to_lower().contains("running"), `LXD says why: ${e.message}`);
        i.delete(#{wait: true, force: true});
        check(!c.instances.exists("NAME"), "gone");
        print("ok");
        "#,
    );
    assert_eq!(script_ok(&source).trim(), "ok");
}

/// Options maps: unknown keys and wrong types are InvalidArgument naming the parameter.
#[test]
fn bad_options_are_invalid_arguments() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let out = script_ok(
        r#"
        let c = Client();
        let e = error_of(|| c.instances.create(#{name: "x"}, #{wiat: true}));
        check_eq(e.kind, "InvalidArgument", "unknown key");
        check(e.message.contains("wiat") && e.message.contains("wait, target"), e.message);
        let e = error_of(|| Client(#{endpoint: "/x", timeout: "soon"}));
        check_eq(e.kind, "InvalidArgument", "wrong type");
        check(e.message.contains("'timeout'"), e.message);
        let e = error_of(|| Client(#{endpoint: "http://plain"}));
        check_eq(e.kind, "InvalidArgument", "bad scheme");
        print(e.message);
        "#,
    );
    assert!(out.contains("https://host:port"), "{out}");
}

/// A missing socket is a Connection error that names it.
#[test]
fn missing_socket_is_a_connection_error() {
    let out = script_ok(
        r#"
        let e = error_of(|| Client("/nonexistent/lxd/unix.socket"));
        check_eq(e.kind, "Connection", "kind");
        print(e.message);
        "#,
    );
    assert!(out.contains("/nonexistent/lxd/unix.socket"), "{out}");
}

/// HTTPS through the lxc configuration (`second`, or `incus` on the Incus pass), and a pinned
/// certificate that does not match is refused with both fingerprints.
#[test]
fn https_remotes_and_pinning() {
    let Some(tb) = common::testbed_for(Needs::EitherServer) else {
        return;
    };
    let remote = common::https_remote();
    let url = match common::server() {
        common::Server::Lxd => &tb.second_url,
        common::Server::Incus => &tb.incus_url,
    };
    let (_, _cleanup, source) = named(
        remote,
        "https",
        &r#"
        let s = Client("REMOTE");
        check_eq(s.endpoint, "SECOND", "endpoint");
        check(s.trusted, "trusted over HTTPS");
        let i = s.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true);
        i.start(true);
        check_eq(i.status, "Running", "running over HTTPS");
        i.delete(#{wait: true, force: true});

        // The main daemon's certificate pinned for another daemon: refused.
        let e = error_of(|| Client(#{endpoint: "SECOND", verify: "CONF/servercerts/main.crt"}));
        check_eq(e.kind, "Tls", "pin mismatch");
        print(e.message);

        // The right certificate given explicitly works, as does the remote's own pin.
        let ok = Client(#{endpoint: "SECOND", verify: "CONF/servercerts/REMOTE.crt"});
        check(ok.trusted, "explicit pin");
        let by_url = Client("SECOND");
        check(by_url.trusted, "the pin of the remote with that address");
        "#
        .replace("SECOND", url)
        .replace("REMOTE", remote)
        .replace("CONF", &tb.conf.display().to_string()),
    );
    let out = script_ok(&source);
    assert!(
        out.contains("expected SHA-256") && out.contains("presented"),
        "{out}"
    );
    let fingerprints: Vec<&str> = out
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect();
    assert_eq!(fingerprints.len(), 2, "{out}");
    assert_ne!(fingerprints[0], fingerprints[1]);
}

/// An HTTPS address with no pinned certificate is refused, never trusted silently;
/// `verify: false` is the explicit way out.
#[test]
fn unpinned_https_needs_an_explicit_choice() {
    if common::testbed_for(Needs::Lxd("it reaches m2 of LXD's cluster")).is_none() {
        return;
    }
    let out = script_ok(
        r#"
        // m2 has no remote of its own in the lxc configuration, so nothing pins its certificate.
        let e = error_of(|| Client("https://127.0.0.2:18445"));
        check_eq(e.kind, "Tls", "refused");
        print(e.message);
        let insecure = Client(#{endpoint: "https://127.0.0.2:18445", verify: false});
        check(insecure.server_clustered, "m2 answered when verification was turned off explicitly");
        "#,
    );
    assert!(
        out.contains("no pinned certificate for https://127.0.0.2:18445"),
        "{out}"
    );
}

/// Placement on a cluster member with `target`, and `location`.
#[test]
fn cluster_placement() {
    if common::testbed_for(Needs::Lxd("it needs LXD's cluster")).is_none() {
        return;
    }
    let (_, _cleanup, source) = named(
        "cluster",
        "placed",
        r#"
        let c = Client("cluster");
        check(c.server_clustered, "clustered");
        let i = c.instances.create(#{name: "NAME", source: #{type: "image", alias: "busybox"}}, true, "m2");
        check_eq(i.location, "m2", "placed on m2");
        i.start(true);
        check(i.to_string().ends_with("@m2"), i.to_string());
        let i2 = c.instances.get("NAME");
        check_eq(i2.location, "m2", "location reported");
        i.delete(#{wait: true, force: true});
        print("ok");
        "#,
    );
    assert_eq!(script_ok(&source).trim(), "ok");
}

/// `all()` is one request whatever the number of instances, and `-v` logs each request.
#[test]
fn all_is_one_request() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let names: Vec<String> = (0..3).map(|_| unique("many")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let _cleanup = Cleanup::new("main", &refs);
    let creates: String = names
        .iter()
        .map(|n| {
            format!("c.instances.create(#{{name: \"{n}\", source: #{{type: \"none\"}}}}, true);")
        })
        .collect();
    script_ok(&format!("let c = Client(); {creates}"));
    let run = common::lxd_script(&[
        "-v",
        "eval",
        "let all = Client().instances.all(); print(all.len()); print(all.map(|i| i.config).len());",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("lxd: "))
        .collect();
    assert_eq!(requests.len(), 2, "GET /1.0 and one list: {requests:?}");
    assert!(requests[1].contains("GET ") && requests[1].contains("/1.0/instances?recursion=1"));
    assert!(requests[1].ends_with(" ms)"), "{}", requests[1]);
    let count: usize = run
        .stdout
        .lines()
        .next()
        .unwrap_or("0")
        .parse()
        .expect("count");
    assert!(count >= 3);
}

/// Incus is found without LXD: `Client()` through `$INCUS_SOCKET` when no LXD variable is set,
/// and `Client("incus")` through the incus client's own configuration (`$INCUS_CONF`) when the
/// lxc configuration has no such remote, with that configuration's certificate.
#[test]
fn incus_is_found_without_lxd() {
    let Some(tb) = common::testbed_for(Needs::Lxd("it uses both servers' settings, once")) else {
        return;
    };
    let empty_lxc_conf = tempfile::tempdir().expect("tempdir");
    let run: common::Run = std::process::Command::new(env!("CARGO_BIN_EXE_lxd-script"))
        .env_remove("LXD_DIR")
        .env_remove("INCUS_DIR")
        .env("INCUS_SOCKET", &tb.incus_socket)
        .env("LXD_CONF", empty_lxc_conf.path())
        .env("INCUS_CONF", &tb.incus_conf)
        .args([
            "eval",
            r#"let local = Client();
               print(local.server.name);
               print(local.endpoint);
               let remote = Client("incus");
               print(remote.server.name);
               print(remote.endpoint);
               print(remote.trusted);
               try { Client("no-such-remote"); } catch (e) { print(e.message); }"#,
        ])
        .output()
        .expect("run")
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "incus",
            &format!("unix:{}", tb.incus_socket.display()),
            "incus",
            tb.incus_url.as_str(),
            "true"
        ]
    );
    assert!(
        lines[5].contains("known: ") && lines[5].contains("incus remote add"),
        "{}",
        lines[5]
    );
    // The lxc configuration stayed empty: no certificate was generated there.
    assert!(!empty_lxc_conf.path().join("client.crt").exists());
}

/// `all(#{recursion: 2})` brings every instance's state in the one request, so `state()` needs no
/// other; `state(true)` reads it anew. `fields` limits the state's costly parts where the server
/// can, and falls back to all of it where it cannot (LXD 5.0.2 and Incus 6.0.4 cannot).
#[test]
fn listings_with_state() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("listed");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"Client().instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true).start(true);"#
    ));
    let run = common::lxd_script(&[
        "-v",
        "eval",
        &format!(
            r#"let c = Client();
               let mine = c.instances.all(#{{recursion: 2}}).filter(|i| i.name == "{name}")[0];
               let st = mine.state();
               print(`${{st.status}} ${{st.pid > 0}} ${{"lo" in st.network}}`);
               let some = c.containers.all(#{{fields: ["network"]}}).filter(|i| i.name == "{name}")[0];
               print("network" in some.state());
               print("snapshots" in mine.to_map());"#
        ),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "Running true true\ntrue\ntrue\n");
    let requests: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("lxd: "))
        .collect();
    assert_eq!(requests.len(), 3, "GET /1.0 and two listings: {requests:?}");
    assert!(
        requests[1].contains("/1.0/instances?recursion=2 "),
        "{}",
        requests[1]
    );
    assert!(
        requests[2].contains("/1.0/instances?recursion=2&instance-type=container "),
        "{}",
        requests[2]
    );
    // A refresh reads the state anew; bad options say what is allowed.
    let out = script_ok(&format!(
        r#"let c = Client();
           let mine = c.instances.all(#{{recursion: 2}}).filter(|i| i.name == "{name}")[0];
           check_eq(mine.state(true).status, "Running", "refreshed");
           let e = error_of(|| c.instances.all(#{{recursion: 3}}));
           check_eq(e.kind, "InvalidArgument", e.message);
           let e = error_of(|| c.instances.all(#{{fields: ["cpu"]}}));
           check(e.message.contains("state.disk, state.network"), e.message);
           let e = error_of(|| c.instances.all(#{{recursion: 1, fields: ["disk"]}}));
           check(e.message.contains("recursion 2"), e.message);
           print("ok");"#
    ));
    assert_eq!(out.trim(), "ok");
}

/// Ctrl-C during a waited server operation stops the wait and says what became of the
/// operation: LXD does not let a publish be cancelled, so it is said to go on, with its id,
/// and it does (its image appears). (The operation went on silently.)
#[test]
fn ctrl_c_says_what_becomes_of_the_operation() {
    if common::testbed_for(Needs::EitherServer).is_none() {
        return;
    }
    let name = unique("ctrlc");
    let _cleanup = Cleanup::new("main", &[name.as_str()]);
    script_ok(&format!(
        r#"let c = Client();
           let i = c.instances.create(#{{name: "{name}", source: #{{type: "image", alias: "busybox"}}}}, true);
           i.start(true);
           i.execute(["sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=120 2>/dev/null"]);
           i.stop(true);"#
    ));
    // Ready once the script is about to publish, and a moment later (the request is made at
    // once; the publish itself takes seconds): other tests' operations run on this server too.
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("publishing");
    let seen: std::cell::Cell<Option<std::time::Instant>> = std::cell::Cell::new(None);
    let publishing = || {
        if seen.get().is_none() && marker.exists() {
            seen.set(Some(std::time::Instant::now()));
        }
        seen.get()
            .is_some_and(|at| at.elapsed() > std::time::Duration::from_millis(500))
    };
    let publish = format!(
        r#"write_file("{}", "");
           Client().instances.get("{name}").publish(#{{wait: true, aliases: ["{name}"], compression_algorithm: "gzip"}})"#,
        marker.display()
    );
    let (run, _) = common::interrupt(&["eval", &publish], publishing);
    assert_eq!(run.code, 130, "{run:?}");
    let said = run
        .stderr
        .lines()
        .find(|l| l.contains("cannot be cancelled and goes on in project 'default'"))
        .unwrap_or_else(|| panic!("no word of the operation: {run:?}"));
    assert!(said.starts_with("lxd-script: operation "), "{said}");
    // It goes on: its image appears under the alias.
    script_ok(&format!(
        r#"let c = Client();
           wait_until(60, || c.images.all().some(|i| i.aliases.some(|a| a.name == "{name}")));
           c.images.get_by_alias("{name}").delete(true);"#
    ));
}
