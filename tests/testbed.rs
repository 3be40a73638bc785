//! The test bed itself: every daemon (LXD's and Incus's) answers, the image is everywhere, the
//! cluster is whole.

mod common;

use common::Needs;

use lxd_script::lxd::Client;
use lxd_script::lxd::{ClientConfig, ConnectSpec, Endpoint, Target, TransportOptions, resolve};
use serde_json::Value;

fn unix(path: &std::path::Path) -> Client {
    let target = Target {
        endpoint: Endpoint::Unix(path.to_owned()),
        tls: None,
        project: None,
        remote: None,
    };
    Client::connect(&target, TransportOptions::default()).expect("unix client")
}

fn remote(name: &str) -> Client {
    let config = ClientConfig::discover().expect("lxc configuration");
    let spec = ConnectSpec {
        remote: Some(name.to_owned()),
        ..ConnectSpec::default()
    };
    Client::connect(
        &resolve(&spec, &config).expect("remote"),
        TransportOptions::default(),
    )
    .expect("https client")
}

/// Every daemon answers `GET /1.0` on its socket, and over HTTPS as a trusted client.
#[tokio::test]
async fn every_daemon_answers() {
    let Some(tb) = common::testbed_for(Needs::Lxd(
        "it checks LXD's daemons of the test bed, once, on the LXD pass",
    )) else {
        return;
    };
    for socket in [
        &tb.main_socket,
        &tb.second_socket,
        &tb.m1_socket,
        &tb.m2_socket,
        &tb.incus_socket,
    ] {
        let server = unix(socket).server().await.expect("GET /1.0");
        assert_eq!(server["auth"], "trusted", "{}", socket.display());
    }
    for name in ["main", "second", "cluster"] {
        let server = remote(name).server().await.expect("GET /1.0 over HTTPS");
        assert_eq!(server["auth"], "trusted", "remote {name}");
        assert_eq!(server["environment"]["server_version"], "5.0.2");
    }
    let incus = remote("incus").server().await.expect("GET /1.0 of Incus");
    assert_eq!(incus["auth"], "trusted", "remote incus");
    assert_eq!(incus["environment"]["server"], "incus");
    assert!(
        incus["environment"]["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("6.0.")),
        "{incus}"
    );
}

/// The busybox image is on main, second and the cluster (both members see it).
#[tokio::test]
async fn the_busybox_image_is_everywhere() {
    let Some(tb) = common::testbed_for(Needs::Lxd(
        "it checks LXD's daemons of the test bed, once, on the LXD pass",
    )) else {
        return;
    };
    for socket in [
        &tb.main_socket,
        &tb.second_socket,
        &tb.m1_socket,
        &tb.m2_socket,
        &tb.incus_socket,
    ] {
        let alias = unix(socket)
            .get("/1.0/images/aliases/busybox")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
        assert!(alias["target"].as_str().is_some_and(|t| t.len() == 64));
    }
}

/// The cluster has two members, m1 and m2, both online.
#[tokio::test]
async fn the_cluster_has_two_online_members() {
    let Some(tb) = common::testbed_for(Needs::Lxd(
        "it checks LXD's daemons of the test bed, once, on the LXD pass",
    )) else {
        return;
    };
    let members = unix(&tb.m1_socket)
        .get("/1.0/cluster/members?recursion=1")
        .await
        .expect("members");
    let mut seen: Vec<(String, String)> = members
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            (
                m["server_name"].as_str().unwrap_or_default().to_owned(),
                m["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("m1".to_owned(), "Online".to_owned()),
            ("m2".to_owned(), "Online".to_owned())
        ]
    );
    let server = unix(&tb.m2_socket).server().await.expect("m2");
    assert_eq!(server["environment"]["server_clustered"], Value::Bool(true));
}
