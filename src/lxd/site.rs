//! Desired state. A site names the projects, networks, profiles, storage volumes and instances
//! it wants, with only the fields it cares about; [`plan`] compares it with what the server has (one
//! recursive listing per kind, plus the files an instance declares) and [`apply`] carries the
//! plan out, level by level, the independent changes of a level at once. The server is the
//! state: what `apply` creates is marked with [`MANAGED_KEY`], and only marked objects are ever
//! pruned.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value};

use super::body::Body;
use super::client::Client;
use super::error::{Error, Result};
use super::files::{Files, WriteAttrs, parent_dir};
use super::instance::{self, Instances, StateAction, StateChange};
use super::object;
use super::request::{Request, segment};

/// The config key that marks what `apply` created (and so may prune).
pub const MANAGED_KEY: &str = "user.lxd-script.managed";

/// The kinds of object a site manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SiteKind {
    /// A project.
    Project,
    /// A network.
    Network,
    /// A profile.
    Profile,
    /// A custom storage volume, named `pool/volume`.
    Volume,
    /// An instance.
    Instance,
}

impl SiteKind {
    const ALL: [SiteKind; 5] = [
        SiteKind::Project,
        SiteKind::Network,
        SiteKind::Profile,
        SiteKind::Volume,
        SiteKind::Instance,
    ];

    /// The word plans use (`profile`).
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Project => "project",
            SiteKind::Network => "network",
            SiteKind::Profile => "profile",
            SiteKind::Volume => "volume",
            SiteKind::Instance => "instance",
        }
    }

    /// Its key in a site (`profiles`).
    fn site_key(self) -> &'static str {
        match self {
            SiteKind::Project => "projects",
            SiteKind::Network => "networks",
            SiteKind::Profile => "profiles",
            SiteKind::Volume => "volumes",
            SiteKind::Instance => "instances",
        }
    }

    /// The fields a site may give an object of this kind.
    fn fields(self) -> &'static [&'static str] {
        match self {
            SiteKind::Project => &["description", "config"],
            SiteKind::Network => &["type", "description", "config"],
            SiteKind::Profile => &["description", "config", "devices"],
            SiteKind::Volume => &["description", "config"],
            SiteKind::Instance => &[
                "source",
                "type",
                "description",
                "profiles",
                "config",
                "devices",
                "status",
                "target",
                "files",
            ],
        }
    }

    /// The fields compared key by key (`config`) or as a whole (the others), and written back
    /// by a PATCH.
    fn patchable(self) -> &'static [&'static str] {
        match self {
            SiteKind::Project | SiteKind::Network | SiteKind::Volume => &["description", "config"],
            SiteKind::Profile => &["description", "config", "devices"],
            SiteKind::Instance => &["description", "profiles", "config", "devices"],
        }
    }
}

/// A file an instance should have: its content, and owner and mode when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The whole content.
    pub content: Vec<u8>,
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
}

/// One object a site wants.
#[derive(Debug, Clone)]
pub struct Desired {
    /// Its kind.
    pub kind: SiteKind,
    /// Its name (`pool/volume` for a volume).
    pub name: String,
    /// The fields it names, normalised (config values as strings).
    pub spec: Map<String, Value>,
    /// The files it names (instances).
    pub files: BTreeMap<String, FileSpec>,
}

/// A site: what the server should have. Kinds it does not name are left alone.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// The objects, in the order of their kinds.
    pub objects: Vec<Desired>,
    /// The kinds the site names (even with no object): the only ones a prune looks at.
    pub kinds: BTreeSet<SiteKind>,
}

/// Why a site was refused, with what to write instead.
fn refused(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl Site {
    /// Reads a site: `#{projects, networks, profiles, volumes, instances}`, each a map of name
    /// to fields.
    pub fn from_value(site: &Value) -> Result<Site> {
        let Value::Object(top) = site else {
            return Err(refused(format!(
                "a site is a map of kinds (projects, networks, profiles, volumes, instances), not {}",
                kind_of(site)
            )));
        };
        let known: Vec<&str> = SiteKind::ALL.iter().map(|k| k.site_key()).collect();
        if let Some(bad) = top.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(refused(format!(
                "the site has '{bad}'; the kinds a site names are: {}",
                known.join(", ")
            )));
        }
        let mut out = Site::default();
        for kind in SiteKind::ALL {
            let Some(objects) = top.get(kind.site_key()) else {
                continue;
            };
            let Value::Object(objects) = objects else {
                return Err(refused(format!(
                    "site.{} is a map of name to fields, not {}",
                    kind.site_key(),
                    kind_of(objects)
                )));
            };
            out.kinds.insert(kind);
            for (name, spec) in objects {
                out.objects.push(desired(kind, name, spec)?);
            }
        }
        Ok(out)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "()",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

/// A config or device value as LXD keeps it: a string.
fn as_config_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A map of string values (config, one device), checked and normalised.
fn string_map(what: &str, value: &Value) -> Result<Map<String, Value>> {
    let Value::Object(map) = value else {
        return Err(refused(format!("{what} is a map, not {}", kind_of(value))));
    };
    map.iter()
        .map(|(k, v)| {
            as_config_string(v)
                .map(|s| (k.clone(), Value::String(s)))
                .ok_or_else(|| {
                    refused(format!(
                        "{what}.{k} is {}; LXD keeps strings (numbers and bools are turned into strings)",
                        kind_of(v)
                    ))
                })
        })
        .collect()
}

fn desired(kind: SiteKind, name: &str, spec: &Value) -> Result<Desired> {
    let what = format!("site.{}[\"{name}\"]", kind.site_key());
    let Value::Object(spec) = spec else {
        return Err(refused(format!(
            "{what} is a map of fields, not {}",
            kind_of(spec)
        )));
    };
    if kind == SiteKind::Volume && name.split('/').filter(|p| !p.is_empty()).count() != 2 {
        return Err(refused(format!(
            "{what}: a volume is named POOL/NAME (\"default/data\")"
        )));
    }
    let mut out = Desired {
        kind,
        name: name.to_owned(),
        spec: Map::new(),
        files: BTreeMap::new(),
    };
    for (key, value) in spec {
        if !kind.fields().contains(&key.as_str()) {
            return Err(refused(format!(
                "{what} has '{key}'; an object of kind {} names some of: {}",
                kind.as_str(),
                kind.fields().join(", ")
            )));
        }
        let field = format!("{what}.{key}");
        let normal = match key.as_str() {
            "config" => {
                let config = string_map(&field, value)?;
                if let Some(volatile) = config.keys().find(|k| k.starts_with("volatile.")) {
                    return Err(refused(format!(
                        "{field}.{volatile}: volatile keys are the server's own; a site never sets them"
                    )));
                }
                Value::Object(config)
            }
            "devices" => {
                let Value::Object(devices) = value else {
                    return Err(refused(format!(
                        "{field} is a map of device name to device, not {}",
                        kind_of(value)
                    )));
                };
                let mut out = Map::new();
                for (device, spec) in devices {
                    out.insert(
                        device.clone(),
                        Value::Object(string_map(&format!("{field}.{device}"), spec)?),
                    );
                }
                Value::Object(out)
            }
            "profiles" => match value {
                Value::Array(names) if names.iter().all(Value::is_string) => value.clone(),
                _ => {
                    return Err(refused(format!("{field} is an array of profile names")));
                }
            },
            "status" => match value.as_str() {
                Some("Running" | "Stopped" | "Frozen") => value.clone(),
                _ => {
                    return Err(refused(format!(
                        "{field} is \"Running\", \"Stopped\" or \"Frozen\", not {value}"
                    )));
                }
            },
            "source" => match value {
                Value::Object(_) => value.clone(),
                _ => {
                    return Err(refused(format!(
                        "{field} is LXD's source map (#{{type: \"image\", alias: \"busybox\"}})"
                    )));
                }
            },
            "files" => {
                out.files = file_specs(&field, value)?;
                continue;
            }
            _ => match value {
                Value::String(_) => value.clone(),
                _ => return Err(refused(format!("{field} is a string"))),
            },
        };
        out.spec.insert(key.clone(), normal);
    }
    if kind == SiteKind::Instance && !out.spec.contains_key("source") {
        return Err(refused(format!(
            "{what} has no source: an instance names what it is made from (#{{type: \"image\", alias: \"busybox\"}})"
        )));
    }
    Ok(out)
}

fn file_specs(what: &str, value: &Value) -> Result<BTreeMap<String, FileSpec>> {
    let Value::Object(files) = value else {
        return Err(refused(format!(
            "{what} is a map of path to #{{content, mode, uid, gid}}"
        )));
    };
    let mut out = BTreeMap::new();
    for (path, spec) in files {
        let field = format!("{what}[\"{path}\"]");
        if !path.starts_with('/') {
            return Err(refused(format!("{field}: the path must be absolute")));
        }
        let Value::Object(spec) = spec else {
            return Err(refused(format!("{field} is #{{content, mode, uid, gid}}")));
        };
        if let Some(bad) = spec
            .keys()
            .find(|k| !["content", "mode", "uid", "gid"].contains(&k.as_str()))
        {
            return Err(refused(format!(
                "{field} has '{bad}'; a file names content, mode, uid, gid"
            )));
        }
        let content = match spec.get("content") {
            Some(Value::String(s)) => s.clone().into_bytes(),
            _ => return Err(refused(format!("{field}.content is a string"))),
        };
        let number = |key: &str, radix: u32| -> Result<Option<u32>> {
            match spec.get(key) {
                None => Ok(None),
                Some(Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| refused(format!("{field}.{key} is out of range"))),
                Some(Value::String(s)) => u32::from_str_radix(s, radix)
                    .map(Some)
                    .map_err(|_| refused(format!("{field}.{key}: '{s}' is not a number"))),
                Some(other) => Err(refused(format!(
                    "{field}.{key} is a number, not {}",
                    kind_of(other)
                ))),
            }
        };
        out.insert(
            path.clone(),
            FileSpec {
                content,
                mode: number("mode", 8)?,
                uid: number("uid", 10)?,
                gid: number("gid", 10)?,
            },
        );
    }
    Ok(out)
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Makes a missing object.
    Create,
    /// Changes an object in place.
    Update,
    /// Deletes and remakes an object (a change LXD cannot make in place).
    Replace,
    /// Deletes a marked object the site no longer names (`prune`).
    Delete,
}

impl Action {
    /// The word plans use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    /// The sign plans show (`+`, `~`, `-/+`, `-`).
    pub fn sign(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One field that differs: its name (`config.limits.memory`, `file /etc/motd`) and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// What the server has (`None`: nothing).
    pub old: Option<Value>,
    /// What the site wants (`None`: removed).
    pub new: Option<Value>,
}

/// One change of a plan.
#[derive(Debug, Clone)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// To what kind of object.
    pub kind: SiteKind,
    /// To which one.
    pub name: String,
    /// The fields that differ.
    pub diff: Vec<FieldChange>,
    /// The object as the site wants it (not for a delete).
    desired: Option<Desired>,
    /// What a PATCH must send (an update).
    patch: Map<String, Value>,
    /// The files to write.
    files: Vec<String>,
    /// The state change to make, if any: from, to.
    status: Option<(String, String)>,
    /// The instance's cluster member, to move it to.
    moved_to: Option<String>,
    /// What a replace deletes when it has another name than `name` (a volume whose pool
    /// changed: `old-pool/data`).
    replaces: Option<String>,
}

impl Change {
    /// `update instance web1`.
    pub fn title(&self) -> String {
        format!(
            "{} {} {}",
            self.action.as_str(),
            self.kind.as_str(),
            self.name
        )
    }
}

/// What `apply` would do, in order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The changes.
    pub changes: Vec<Change>,
}

impl Plan {
    /// True when the server already is as the site says.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Terraform's way: `+ create`, `~ update` with `key: old -> new`, `-/+ replace`,
    /// `- delete`, and a count; coloured when `color`.
    pub fn render(&self, color: bool) -> String {
        let paint = |code: &str, text: &str| match color {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text.to_owned(),
        };
        if self.changes.is_empty() {
            return "No changes: the server is as the site says.\n".to_owned();
        }
        let mut out = String::new();
        for change in &self.changes {
            let code = match change.action {
                Action::Create => "32",
                Action::Update => "33",
                Action::Replace => "35",
                Action::Delete => "31",
            };
            out.push_str(&paint(
                code,
                &format!("{} {}", change.action.sign(), change.title()),
            ));
            out.push('\n');
            for field in &change.diff {
                let shown =
                    |v: &Option<Value>| v.as_ref().map_or("(none)".to_owned(), Value::to_string);
                let line = match (change.action, &field.old) {
                    (Action::Create, None) => format!("    {}: {}", field.field, shown(&field.new)),
                    (Action::Delete, _) => format!("    {}: {}", field.field, shown(&field.old)),
                    _ => format!(
                        "    {}: {} -> {}",
                        field.field,
                        shown(&field.old),
                        shown(&field.new)
                    ),
                };
                out.push_str(&line);
                out.push('\n');
            }
        }
        let count = |action: Action| self.changes.iter().filter(|c| c.action == action).count();
        out.push_str(&format!(
            "Plan: {} to create, {} to update, {} to replace, {} to delete.\n",
            count(Action::Create),
            count(Action::Update),
            count(Action::Replace),
            count(Action::Delete)
        ));
        out
    }
}

/// How `plan` looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Also delete marked objects of the site's kinds that it no longer names.
    pub prune: bool,
}

/// What the server has of one kind, by name.
type Current = BTreeMap<String, Map<String, Value>>;

/// Reads what the server has of `kind` (for volumes: the custom volumes of every pool, keyed
/// `pool/name`).
async fn current(client: &Client, kind: SiteKind) -> Result<Current> {
    let list = |path: String| async move {
        client
            .objects(&Request::get(path).query("recursion", "1"))
            .await
    };
    let named = |fields: Map<String, Value>| {
        let name = fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        (name, fields)
    };
    Ok(match kind {
        SiteKind::Project => list(object::PROJECTS.to_owned())
            .await?
            .into_iter()
            .map(named)
            .collect(),
        SiteKind::Network => list(object::NETWORKS.to_owned())
            .await?
            .into_iter()
            .map(named)
            .collect(),
        SiteKind::Profile => list(object::PROFILES.to_owned())
            .await?
            .into_iter()
            .map(named)
            .collect(),
        SiteKind::Instance => list(instance::COLLECTION.to_owned())
            .await?
            .into_iter()
            .map(named)
            .collect(),
        // Every pool's, not only those the site names: a volume apply made may have to be
        // pruned, or moved, from a pool the site no longer mentions.
        SiteKind::Volume => {
            let pools = object::keys_of(&client.get(object::STORAGE_POOLS).await?);
            let listings = futures_util::future::try_join_all(pools.iter().map(|pool| {
                list(format!(
                    "{}/{}/volumes/custom",
                    object::STORAGE_POOLS,
                    segment(pool)
                ))
            }))
            .await?;
            let mut all = Current::new();
            for (pool, volumes) in pools.iter().zip(listings) {
                for (name, fields) in volumes.into_iter().map(named) {
                    all.insert(format!("{pool}/{name}"), fields);
                }
            }
            all
        }
    })
}

/// How many objects' extra reads (their files) a plan makes at once.
const PLAN_READS_AT_ONCE: usize = 16;

/// Compares the site with the server: what `apply` would do.
pub async fn plan(client: &Client, site: &Site, opts: PlanOptions) -> Result<Plan> {
    let kinds: Vec<SiteKind> = site.kinds.iter().copied().collect();
    let listed =
        futures_util::future::try_join_all(kinds.iter().map(|k| current(client, *k))).await?;
    let have: BTreeMap<SiteKind, Current> = kinds.into_iter().zip(listed).collect();
    let existing = |wanted: &Desired| have.get(&wanted.kind).and_then(|c| c.get(&wanted.name));
    // Each image alias the existing instances' sources name, resolved once.
    let aliases: BTreeSet<&str> = site
        .objects
        .iter()
        .filter(|wanted| existing(wanted).is_some())
        .filter_map(|wanted| wanted.spec.get("source"))
        .filter(|source| source.get("server").is_none())
        .filter_map(|source| source.get("alias").and_then(Value::as_str))
        .collect();
    let targets = futures_util::future::try_join_all(aliases.iter().map(|alias| async move {
        let meta = client
            .get(&format!("{}/{}", object::IMAGE_ALIASES, segment(alias)))
            .await
            .map_err(|e| e.naming_missing(|| client.missing("Image alias", alias)))?;
        let target = meta
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok::<_, Error>(((*alias).to_owned(), target.to_owned()))
    }))
    .await?;
    let images: BTreeMap<String, String> = targets.into_iter().collect();
    let mut changes = Vec::new();
    let pairs: Vec<(&Desired, &Map<String, Value>)> = site
        .objects
        .iter()
        .filter_map(|wanted| existing(wanted).map(|current| (wanted, current)))
        .collect();
    let updates = stream::iter(pairs)
        .map(|(wanted, current)| update(client, wanted, current, &images))
        .buffered(PLAN_READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    for change in updates {
        changes.extend(change?);
    }
    let marked = |fields: &Map<String, Value>| {
        fields
            .get("config")
            .and_then(|c| c.get(MANAGED_KEY))
            .and_then(Value::as_str)
            == Some("true")
    };
    let named = |kind: SiteKind, name: &str| {
        site.objects
            .iter()
            .any(|d| d.kind == kind && d.name == name)
    };
    let mut replaced = BTreeSet::new();
    for wanted in site.objects.iter().filter(|w| existing(w).is_none()) {
        let mut change = creation(wanted);
        // A volume the site now wants in another pool, where apply made it in one the site no
        // longer names: its pool changed, which LXD cannot do in place.
        if let (SiteKind::Volume, Some((pool, volume))) = (wanted.kind, wanted.name.split_once('/'))
            && let Some((old, _)) = have.get(&SiteKind::Volume).and_then(|volumes| {
                volumes.iter().find(|(key, fields)| {
                    key.split_once('/')
                        .is_some_and(|(p, v)| v == volume && p != pool)
                        && marked(fields)
                        && !named(SiteKind::Volume, key)
                })
            })
        {
            change.action = Action::Replace;
            change.diff = vec![FieldChange {
                field: "pool".into(),
                old: old.split_once('/').map(|(p, _)| Value::String(p.into())),
                new: Some(Value::String(pool.into())),
            }];
            change.replaces = Some(old.clone());
            replaced.insert(old.clone());
        }
        changes.push(change);
    }
    if opts.prune {
        for (kind, objects) in &have {
            for (name, fields) in objects {
                if marked(fields) && !named(*kind, name) && !replaced.contains(name) {
                    changes.push(Change {
                        action: Action::Delete,
                        kind: *kind,
                        name: name.clone(),
                        diff: Vec::new(),
                        desired: None,
                        patch: Map::new(),
                        files: Vec::new(),
                        status: fields
                            .get("status")
                            .and_then(Value::as_str)
                            .map(|s| (s.to_owned(), "Stopped".to_owned())),
                        moved_to: None,
                        replaces: None,
                    });
                }
            }
        }
    }
    changes.sort_by_key(|c| (order(c), c.kind, c.name.clone()));
    Ok(Plan { changes })
}

/// The order changes are shown and made in: instances to prune, projects, the objects
/// instances use, instances, then the other deletions, projects last.
fn order(change: &Change) -> u8 {
    match (change.action, change.kind) {
        (Action::Delete, SiteKind::Instance) => 0,
        (Action::Delete, SiteKind::Project) => 5,
        (Action::Delete, _) => 4,
        (_, SiteKind::Project) => 1,
        (_, SiteKind::Instance) => 3,
        _ => 2,
    }
}

/// The last level of [`order`].
const LAST_LEVEL: u8 = 5;

fn creation(wanted: &Desired) -> Change {
    let mut diff = Vec::new();
    for (key, value) in &wanted.spec {
        match value {
            Value::Object(map) if key == "config" || key == "devices" => {
                for (k, v) in map {
                    diff.push(FieldChange {
                        field: format!("{key}.{k}"),
                        old: None,
                        new: Some(v.clone()),
                    });
                }
            }
            _ => diff.push(FieldChange {
                field: key.clone(),
                old: None,
                new: Some(value.clone()),
            }),
        }
    }
    for path in wanted.files.keys() {
        diff.push(FieldChange {
            field: format!("file {path}"),
            old: None,
            new: Some(Value::String("(content)".into())),
        });
    }
    Change {
        action: Action::Create,
        kind: wanted.kind,
        name: wanted.name.clone(),
        diff,
        desired: Some(wanted.clone()),
        patch: Map::new(),
        files: wanted.files.keys().cloned().collect(),
        status: None,
        moved_to: None,
        replaces: None,
    }
}

/// The change that makes `current` as `wanted` says, if any.
async fn update(
    client: &Client,
    wanted: &Desired,
    current: &Map<String, Value>,
    images: &BTreeMap<String, String>,
) -> Result<Option<Change>> {
    let mut diff = Vec::new();
    let mut patch = Map::new();
    for key in wanted.kind.patchable() {
        let Some(want) = wanted.spec.get(*key) else {
            continue;
        };
        let have = current.get(*key);
        match (want, key) {
            (Value::Object(want), &"config" | &"devices") => {
                let have = have.and_then(Value::as_object);
                let mut changed = Map::new();
                for (k, v) in want {
                    let old = have.and_then(|h| h.get(k));
                    if old != Some(v) {
                        diff.push(FieldChange {
                            field: format!("{key}.{k}"),
                            old: old.cloned(),
                            new: Some(v.clone()),
                        });
                        changed.insert(k.clone(), v.clone());
                    }
                }
                if !changed.is_empty() {
                    patch.insert((*key).to_owned(), Value::Object(changed));
                }
            }
            (want, _) => {
                if have != Some(want) {
                    diff.push(FieldChange {
                        field: (*key).to_owned(),
                        old: have.cloned(),
                        new: Some(want.clone()),
                    });
                    patch.insert((*key).to_owned(), want.clone());
                }
            }
        }
    }
    let mut replace = Vec::new();
    let mut status = None;
    let mut files = Vec::new();
    let mut moved_to = None;
    if wanted.kind == SiteKind::Network
        && let (Some(want), Some(have)) = (wanted.spec.get("type"), current.get("type"))
        && want != have
    {
        replace.push(FieldChange {
            field: "type".into(),
            old: Some(have.clone()),
            new: Some(want.clone()),
        });
    }
    if wanted.kind == SiteKind::Instance {
        let have_type = current
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("container");
        if let Some(want) = wanted.spec.get("type").and_then(Value::as_str)
            && want != have_type
        {
            replace.push(FieldChange {
                field: "type".into(),
                old: Some(have_type.into()),
                new: Some(want.into()),
            });
        }
        if let Some(source) = wanted.spec.get("source")
            && let Some(changed) = source_change(source, current, images)
        {
            replace.push(changed);
        }
        let have_status = current
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(want) = wanted.spec.get("status").and_then(Value::as_str)
            && want != have_status
        {
            diff.push(FieldChange {
                field: "status".into(),
                old: Some(have_status.into()),
                new: Some(want.into()),
            });
            status = Some((have_status.to_owned(), want.to_owned()));
        }
        if let Some(target) = wanted.spec.get("target").and_then(Value::as_str) {
            let location = current
                .get("location")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if location != target && location != "none" && !location.is_empty() {
                diff.push(FieldChange {
                    field: "target".into(),
                    old: Some(location.into()),
                    new: Some(target.into()),
                });
                moved_to = Some(target.to_owned());
            }
        }
        let instance_files = Files::new(client.clone(), &wanted.name);
        for (path, spec) in &wanted.files {
            if let Some(reason) = file_differs(&instance_files, path, spec).await? {
                diff.push(FieldChange {
                    field: format!("file {path}"),
                    old: Some(Value::String(reason)),
                    new: Some(Value::String("(content)".into())),
                });
                files.push(path.clone());
            }
        }
    }
    if !replace.is_empty() {
        let mut change = creation(wanted);
        change.action = Action::Replace;
        change.diff = replace;
        change.status = current
            .get("status")
            .and_then(Value::as_str)
            .map(|s| (s.to_owned(), "Stopped".to_owned()));
        return Ok(Some(change));
    }
    if diff.is_empty() {
        return Ok(None);
    }
    Ok(Some(Change {
        action: Action::Update,
        kind: wanted.kind,
        name: wanted.name.clone(),
        diff,
        desired: Some(wanted.clone()),
        patch,
        files,
        status,
        moved_to,
        replaces: None,
    }))
}

/// The replace an instance's source calls for: the image it was made from
/// (`volatile.base_image`) is not the one the source names now. Unknown stays unchanged.
/// The first 12 characters of a fingerprint, as `lxc` shows it.
fn short(fingerprint: &str) -> String {
    fingerprint.chars().take(12).collect()
}

fn source_change(
    source: &Value,
    current: &Map<String, Value>,
    images: &BTreeMap<String, String>,
) -> Option<FieldChange> {
    let base = current
        .get("config")
        .and_then(|c| c.get("volatile.base_image"))
        .and_then(Value::as_str)?;
    let wanted = match (
        source.get("fingerprint").and_then(Value::as_str),
        source.get("alias").and_then(Value::as_str),
    ) {
        (Some(fingerprint), _) => fingerprint.to_owned(),
        (None, Some(alias)) => images.get(alias)?.clone(),
        (None, None) => return None,
    };
    if wanted.is_empty() || base.starts_with(&wanted) || wanted.starts_with(base) {
        return None;
    }
    Some(FieldChange {
        field: "source".into(),
        old: Some(Value::String(format!("image {}", short(base)))),
        new: Some(Value::String(format!("image {}", short(&wanted)))),
    })
}

/// Why the file in the instance is not as `spec` says (`None` when it is).
async fn file_differs(files: &Files, path: &str, spec: &FileSpec) -> Result<Option<String>> {
    let Some(info) = files.stat(path).await? else {
        return Ok(Some("(missing)".into()));
    };
    let mut reasons = Vec::new();
    if spec.mode.is_some_and(|m| m != info.mode) {
        reasons.push(format!("mode {:04o}", info.mode));
    }
    if spec.uid.is_some_and(|u| u != info.uid) || spec.gid.is_some_and(|g| g != info.gid) {
        reasons.push(format!("owner {}:{}", info.uid, info.gid));
    }
    if files.get(path).await?.as_ref() != spec.content.as_slice() {
        reasons.push("other content".into());
    }
    Ok((!reasons.is_empty()).then(|| format!("({})", reasons.join(", "))))
}

/// How `apply` runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// How many changes of one level run at once.
    pub parallel: usize,
    /// Whether a plan with `-/+ replace` may be carried out.
    pub replace: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallel: 8,
            replace: false,
        }
    }
}

/// What `apply` did: the changes made, those that failed (with why) and those skipped because
/// one they depend on failed.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Made, by title.
    pub done: Vec<String>,
    /// Failed, by title, with the error.
    pub failed: Vec<(String, Error)>,
    /// Not tried: a change they depend on failed.
    pub skipped: Vec<String>,
}

/// Carries `plan` out, level by level: instances to prune, then projects, then networks,
/// profiles and volumes, then instances (each made, patched, its files written, its status
/// reached), then the other objects to prune, projects last. A change whose dependency failed
/// is skipped; the others go on.
/// A plan with a replace is refused whole unless `opts.replace`.
pub async fn apply(client: &Client, plan: &Plan, opts: ApplyOptions) -> Result<ApplyReport> {
    if !opts.replace && plan.changes.iter().any(|c| c.action == Action::Replace) {
        return Err(Error::InvalidArgument(format!(
            "the plan replaces objects (deletes and remakes them), which apply does only with replace: true (--replace); nothing was changed:\n{}",
            plan.render(false)
        )));
    }
    let mut report = ApplyReport::default();
    let mut failed: BTreeSet<(SiteKind, String)> = BTreeSet::new();
    for level in 0..=LAST_LEVEL {
        let steps: Vec<&Change> = plan.changes.iter().filter(|c| order(c) == level).collect();
        let mut runnable = Vec::new();
        for change in steps {
            let blocked = dependencies(change).iter().any(|dep| failed.contains(dep));
            if blocked {
                report.skipped.push(change.title());
                failed.insert((change.kind, change.name.clone()));
            } else {
                runnable.push(change);
            }
        }
        let results: Vec<(&Change, Result<()>)> = stream::iter(runnable)
            .map(|change| async move { (change, make(client, change).await) })
            .buffer_unordered(opts.parallel.max(1))
            .collect()
            .await;
        for (change, result) in results {
            match result {
                Ok(()) => report.done.push(change.title()),
                Err(e) => {
                    failed.insert((change.kind, change.name.clone()));
                    report.failed.push((change.title(), e));
                }
            }
        }
    }
    Ok(report)
}

/// The objects a change needs first: an instance its profiles, the networks its devices name,
/// the volumes its disks name.
fn dependencies(change: &Change) -> Vec<(SiteKind, String)> {
    let Some(wanted) = &change.desired else {
        return Vec::new();
    };
    if wanted.kind != SiteKind::Instance {
        return Vec::new();
    }
    let mut deps = Vec::new();
    for profile in wanted
        .spec
        .get("profiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        deps.push((SiteKind::Profile, profile.to_owned()));
    }
    for device in wanted
        .spec
        .get("devices")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|d| d.values())
    {
        let field = |k: &str| device.get(k).and_then(Value::as_str);
        for network in [field("network"), field("parent")].into_iter().flatten() {
            deps.push((SiteKind::Network, network.to_owned()));
        }
        if let (Some("disk"), Some(pool), Some(source)) =
            (field("type"), field("pool"), field("source"))
        {
            deps.push((SiteKind::Volume, format!("{pool}/{source}")));
        }
    }
    deps
}

/// The path of an object of the site.
fn object_path(kind: SiteKind, name: &str) -> String {
    match kind {
        SiteKind::Project => format!("{}/{}", object::PROJECTS, segment(name)),
        SiteKind::Network => format!("{}/{}", object::NETWORKS, segment(name)),
        SiteKind::Profile => format!("{}/{}", object::PROFILES, segment(name)),
        SiteKind::Instance => instance::path(name),
        SiteKind::Volume => {
            let (pool, volume) = name.split_once('/').unwrap_or((name, ""));
            format!(
                "{}/{}/volumes/custom/{}",
                object::STORAGE_POOLS,
                segment(pool),
                segment(volume)
            )
        }
    }
}

/// The collection a new object of the site is posted to, and its create body.
fn create_request(wanted: &Desired) -> Request {
    let mut body = wanted.spec.clone();
    body.remove("status");
    body.remove("target");
    let config = body
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(config) = config {
        config.insert(MANAGED_KEY.into(), Value::String("true".into()));
    }
    let (path, name) = match wanted.kind {
        SiteKind::Project => (object::PROJECTS.to_owned(), wanted.name.clone()),
        SiteKind::Network => (object::NETWORKS.to_owned(), wanted.name.clone()),
        SiteKind::Profile => (object::PROFILES.to_owned(), wanted.name.clone()),
        SiteKind::Instance => (instance::COLLECTION.to_owned(), wanted.name.clone()),
        SiteKind::Volume => {
            let (pool, volume) = wanted.name.split_once('/').unwrap_or((&wanted.name, ""));
            (
                format!("{}/{}/volumes/custom", object::STORAGE_POOLS, segment(pool)),
                volume.to_owned(),
            )
        }
    };
    body.insert("name".into(), Value::String(name));
    let target = wanted.spec.get("target").and_then(Value::as_str);
    Request::post(path, Value::Object(body)).query_opt("target", target)
}

/// Makes one change.
async fn make(client: &Client, change: &Change) -> Result<()> {
    let path = object_path(change.kind, &change.name);
    match change.action {
        Action::Delete => {
            if change.kind == SiteKind::Instance {
                stop_if_running(client, &change.name, change.status.as_ref()).await?;
            }
            client.run(&Request::delete(path)).await?;
        }
        Action::Replace => {
            let old = change.replaces.as_deref().unwrap_or(&change.name);
            if change.kind == SiteKind::Instance {
                stop_if_running(client, old, change.status.as_ref()).await?;
            }
            client
                .run(&Request::delete(object_path(change.kind, old)))
                .await?;
            create(client, change).await?;
        }
        Action::Create => create(client, change).await?,
        Action::Update => {
            if let Some(target) = &change.moved_to {
                move_to(client, &change.name, target).await?;
            }
            if !change.patch.is_empty() {
                client
                    .run(&Request::patch(path, Value::Object(change.patch.clone())))
                    .await?;
            }
            write_files(client, change).await?;
            if let Some((_, to)) = &change.status {
                reach_status(client, &change.name, to).await?;
            }
        }
    }
    Ok(())
}

async fn create(client: &Client, change: &Change) -> Result<()> {
    let Some(wanted) = &change.desired else {
        return Ok(());
    };
    client.run(&create_request(wanted)).await?;
    if wanted.kind == SiteKind::Instance {
        write_files(client, change).await?;
        if let Some(status) = wanted.spec.get("status").and_then(Value::as_str)
            && status != "Stopped"
        {
            reach_status(client, &wanted.name, status).await?;
        }
    }
    Ok(())
}

async fn write_files(client: &Client, change: &Change) -> Result<()> {
    let Some(wanted) = &change.desired else {
        return Ok(());
    };
    let files = Files::new(client.clone(), &wanted.name);
    for path in &change.files {
        let Some(spec) = wanted.files.get(path) else {
            continue;
        };
        let attrs = WriteAttrs {
            mode: spec.mode,
            uid: spec.uid,
            gid: spec.gid,
            append: false,
        };
        let body = || Body::from(spec.content.clone());
        match files.put(path, body(), &attrs).await {
            // A file's directory is part of it: missing ones are made (root's, LXD's mode).
            Err(e) if e.is_not_found() => {
                files
                    .mk_dir(parent_dir(path), &WriteAttrs::default(), true)
                    .await?;
                files.put(path, body(), &attrs).await?;
            }
            written => written?,
        }
    }
    Ok(())
}

async fn stop_if_running(
    client: &Client,
    name: &str,
    status: Option<&(String, String)>,
) -> Result<()> {
    if status.is_some_and(|(from, _)| from != "Stopped") {
        let stop = StateChange::new(StateAction::Stop).forced();
        state(client, name, &stop).await?;
    }
    Ok(())
}

async fn state(client: &Client, name: &str, change: &StateChange) -> Result<()> {
    Instances::new(client.clone(), None)
        .change_state_and_wait(name, change)
        .await
}

/// Starts, stops, freezes or unfreezes an instance until it is `to`.
async fn reach_status(client: &Client, name: &str, to: &str) -> Result<()> {
    let now = client
        .get(&format!("{}/state", instance::path(name)))
        .await?;
    let from = now
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let actions: &[StateAction] = match (from, to) {
        (a, b) if a == b => &[],
        ("Frozen", "Running") => &[StateAction::Unfreeze],
        ("Frozen", "Stopped") => &[StateAction::Unfreeze, StateAction::Stop],
        (_, "Running") => &[StateAction::Start],
        ("Stopped", "Frozen") => &[StateAction::Start, StateAction::Freeze],
        (_, "Frozen") => &[StateAction::Freeze],
        (_, _) => &[StateAction::Stop],
    };
    for action in actions {
        let mut change = StateChange::new(*action);
        if *action == StateAction::Stop {
            change = change.forced();
        }
        state(client, name, &change).await?;
    }
    Ok(())
}

/// Moves an instance to another member of its cluster (stopped for the move, then as it was).
async fn move_to(client: &Client, name: &str, target: &str) -> Result<()> {
    let opts = super::migration::MigrateOptions {
        target: Some(target.to_owned()),
        ..Default::default()
    };
    super::migration::move_within_cluster(client, name, target, &opts)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sites_are_checked_and_normalised() {
        let site = Site::from_value(&json!({
            "profiles": {"web": {"config": {"limits.cpu": 2, "boot.autostart": true}}},
            "instances": {"w1": {"source": {"type": "image", "alias": "busybox"}, "status": "Running",
                                 "files": {"/etc/motd": {"content": "hi\n", "mode": "0644"}}}},
        }))
        .expect("a site");
        assert_eq!(site.objects.len(), 2);
        let profile = &site.objects[0];
        assert_eq!(
            profile.spec["config"],
            json!({"limits.cpu": "2", "boot.autostart": "true"})
        );
        let instance = &site.objects[1];
        assert_eq!(instance.files["/etc/motd"].mode, Some(0o644));
        for (bad, says) in [
            (json!({"profile": {}}), "the kinds a site names are"),
            (
                json!({"instances": {"x": {"image": "busybox"}}}),
                "names some of: source",
            ),
            (
                json!({"instances": {"x": {"status": "Running"}}}),
                "has no source",
            ),
            (json!({"volumes": {"data": {}}}), "POOL/NAME"),
            (
                json!({"instances": {"x": {"source": {}, "status": "Up"}}}),
                "\"Running\", \"Stopped\" or \"Frozen\"",
            ),
            (
                json!({"profiles": {"p": {"config": {"a": [1]}}}}),
                "LXD keeps strings",
            ),
        ] {
            let err = Site::from_value(&bad).expect_err("refused").to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn plans_render_as_terraform_does() {
        let plan = Plan {
            changes: vec![Change {
                action: Action::Update,
                kind: SiteKind::Instance,
                name: "web1".into(),
                diff: vec![FieldChange {
                    field: "config.user.role".into(),
                    old: Some(json!("db")),
                    new: Some(json!("web")),
                }],
                desired: None,
                patch: Map::new(),
                files: Vec::new(),
                status: None,
                moved_to: None,
                replaces: None,
            }],
        };
        assert_eq!(
            plan.render(false),
            "~ update instance web1\n    config.user.role: \"db\" -> \"web\"\nPlan: 0 to create, 1 to update, 0 to replace, 0 to delete.\n"
        );
        assert!(Plan::default().is_empty());
    }

    #[test]
    fn instances_depend_on_their_profiles_networks_and_volumes() {
        let site = Site::from_value(&json!({"instances": {"w": {
            "source": {"type": "image", "alias": "busybox"},
            "profiles": ["default", "web"],
            "devices": {"eth0": {"type": "nic", "network": "sitebr0"},
                        "data": {"type": "disk", "pool": "default", "source": "data", "path": "/data"}}}}}))
        .expect("a site");
        let change = creation(&site.objects[0]);
        let deps = dependencies(&change);
        assert!(deps.contains(&(SiteKind::Profile, "web".into())));
        assert!(deps.contains(&(SiteKind::Network, "sitebr0".into())));
        assert!(deps.contains(&(SiteKind::Volume, "default/data".into())));
    }

    /// On a fake server: a site that differs in one config key plans one update, whose apply
    /// PATCHes only that key; with `prune`, the marked profile the site no longer names is
    /// deleted and the unmarked one is not.
    #[tokio::test]
    async fn plans_compare_only_what_the_site_names() {
        use crate::lxd::fake::{FakeAnswer, FakeLxd};
        use crate::lxd::transport::TransportOptions;
        use std::sync::{Arc, Mutex};
        let patched: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let seen_patch = patched.clone();
        let lxd = FakeLxd::new(move |req| match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/1.0/profiles?recursion=1") => FakeAnswer::sync(json!([
                {"name": "web", "description": "web tier", "devices": {},
                 "config": {"limits.memory": "256MB", MANAGED_KEY: "true"}},
                {"name": "old", "config": {MANAGED_KEY: "true"}},
                {"name": "hand", "config": {}},
            ])),
            ("GET", "/1.0/instances?recursion=1") => FakeAnswer::sync(json!([
                {"name": "w1", "status": "Running", "type": "container", "location": "none",
                 "profiles": ["default", "web"], "devices": {},
                 "config": {"user.role": "db", "volatile.base_image": "abc123", "image.os": "x"}},
            ])),
            ("GET", "/1.0/images/aliases/busybox") => FakeAnswer::sync(json!({"target": "abc123"})),
            ("PATCH", path) | ("DELETE", path) => {
                seen_patch
                    .lock()
                    .expect("lock")
                    .push((format!("{} {path}", req.method), req.json()));
                FakeAnswer::sync(json!({}))
            }
            _ => FakeAnswer::error(404, "not found"),
        });
        let client = lxd.client(TransportOptions::default());
        let site = Site::from_value(&json!({
            "profiles": {"web": {"description": "web tier", "config": {"limits.memory": "256MB"}}},
            "instances": {"w1": {"source": {"type": "image", "alias": "busybox"},
                                 "profiles": ["default", "web"], "status": "Running",
                                 "config": {"user.role": "web"}}},
        }))
        .expect("a site");
        let planned = plan(&client, &site, PlanOptions::default())
            .await
            .expect("plan");
        assert_eq!(planned.changes.len(), 1, "{}", planned.render(false));
        assert_eq!(planned.changes[0].title(), "update instance w1");
        let report = apply(&client, &planned, ApplyOptions::default())
            .await
            .expect("apply");
        assert_eq!(report.done, ["update instance w1"]);
        assert_eq!(
            *patched.lock().expect("lock"),
            [(
                "PATCH /1.0/instances/w1".to_owned(),
                json!({"config": {"user.role": "web"}})
            )]
        );
        let pruned = plan(&client, &site, PlanOptions { prune: true })
            .await
            .expect("plan");
        let titles: Vec<String> = pruned.changes.iter().map(Change::title).collect();
        assert_eq!(titles, ["update instance w1", "delete profile old"]);
    }
}
