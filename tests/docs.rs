//! The documentation is kept true: every `rhai` block of `docs/guide.md` runs against the test
//! bed (a section's blocks in order, as one script), every lxd-script call in
//! `docs/from-pylxd.md` exists in the engine with that number of arguments, and that table has
//! a row for each public pylxd call.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::Needs;

/// One member of a type in the engine's reference: a method (with its arity) or a property.
#[derive(Debug)]
struct Member {
    name: String,
    /// `None` for a property.
    arity: Option<usize>,
    /// The type it returns or holds (`Instance`, `any`, `map`, ...).
    returns: String,
}

/// The engine's reference (`lxd-script api`): type name to members; globals under "Globals".
fn reference() -> HashMap<String, Vec<Member>> {
    let out = Command::new(env!("CARGO_BIN_EXE_lxd-script"))
        .arg("api")
        .output()
        .expect("run lxd-script api");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut types: HashMap<String, Vec<Member>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines().skip(1) {
        if !line.starts_with(' ') && !line.is_empty() {
            current = line.trim().to_owned();
            continue;
        }
        let Some(entry) = line.strip_prefix("  ") else {
            continue;
        };
        if entry.starts_with(' ') || entry.starts_with(".[") {
            continue;
        }
        let entry = entry.strip_prefix('.').unwrap_or(entry);
        let is_method = entry
            .split_once('(')
            .is_some_and(|(before, _)| !before.contains(": "));
        let member = if let (true, Some((name, rest))) = (is_method, entry.split_once('(')) {
            let (args, returns) = rest.split_once(')').expect("a closing parenthesis");
            Member {
                name: name.to_owned(),
                arity: Some(if args.trim().is_empty() {
                    0
                } else {
                    args.split(',').count()
                }),
                returns: returns
                    .trim()
                    .strip_prefix("-> ")
                    .unwrap_or("()")
                    .to_owned(),
            }
        } else if let Some((name, rest)) = entry.split_once(": ") {
            Member {
                name: name.to_owned(),
                arity: None,
                returns: rest.split(' ').next().unwrap_or_default().to_owned(),
            }
        } else {
            continue;
        };
        types.entry(current.clone()).or_default().push(member);
    }
    types
}

/// The variables the table's middle column uses, as its legend names them.
const LEGEND: &[(&str, &str)] = &[
    ("client", "Client"),
    ("other", "Client"),
    ("i", "Instance"),
    ("s", "Snapshot"),
    ("img", "Image"),
    ("p", "Profile"),
    ("n", "Network"),
    ("fw", "NetworkForward"),
    ("pool", "StoragePool"),
    ("v", "StorageVolume"),
    ("vs", "StorageVolumeSnapshot"),
    ("proj", "Project"),
    ("op", "Operation"),
    ("cert", "Certificate"),
    ("m", "ClusterMember"),
    ("ev", "EventStream"),
];

/// The index of the quote that closes the string literal opening at `open`.
fn string_end(text: &[char], open: usize) -> usize {
    let mut k = open + 1;
    while k < text.len() && text[k] != '"' {
        k += if text[k] == '\\' { 2 } else { 1 };
    }
    k
}

/// The end of the bracketed text that starts at `open` (its closing bracket's index), skipping
/// string literals.
fn closing(text: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut k = open;
    while k < text.len() {
        match text[k] {
            '"' => k = string_end(text, k),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
        k += 1;
    }
    None
}

/// How many arguments a call's argument text holds (commas at the top level, plus one).
fn arity(args: &[char]) -> usize {
    if args.iter().all(|c| c.is_whitespace()) {
        return 0;
    }
    let mut count = 1;
    let mut k = 0;
    while k < args.len() {
        match args[k] {
            '"' => k = string_end(args, k),
            '(' | '[' | '{' => k = closing(args, k).unwrap_or(args.len()),
            ',' => count += 1,
            _ => {}
        }
        k += 1;
    }
    count
}

fn identifier(text: &[char], from: usize) -> (String, usize) {
    let end = (from..text.len())
        .find(|&k| !(text[k].is_alphanumeric() || text[k] == '_'))
        .unwrap_or(text.len());
    (text[from..end].iter().collect(), end)
}

/// Checks one expression of the middle column against the reference; `Err` says what is wrong.
fn check_expression(expression: &str, types: &HashMap<String, Vec<Member>>) -> Result<(), String> {
    let text: Vec<char> = expression.chars().collect();
    let (first, mut at) = identifier(&text, 0);
    let mut current = if let Some((_, ty)) = LEGEND.iter().find(|(v, _)| *v == first) {
        (*ty).to_owned()
    } else if text.get(at) == Some(&'(') {
        let close = closing(&text, at).ok_or("an unclosed call")?;
        let n = arity(&text[at + 1..close]);
        let global = types["Globals"]
            .iter()
            .find(|m| m.name == first && m.arity == Some(n))
            .ok_or_else(|| format!("no global {first} with {n} argument(s)"))?;
        at = close + 1;
        global.returns.clone()
    } else {
        return Err(format!(
            "{first} is neither a variable of the legend nor a global call"
        ));
    };
    while at < text.len() && text[at] == '.' {
        let Some(members) = types.get(&current) else {
            return Ok(()); // a map, an array, any: nothing more to check
        };
        let (name, end) = identifier(&text, at + 1);
        at = end;
        if text.get(at) == Some(&'(') {
            let close = closing(&text, at).ok_or("an unclosed call")?;
            let n = arity(&text[at + 1..close]);
            let method = members
                .iter()
                .find(|m| m.name == name && m.arity == Some(n))
                .ok_or_else(|| {
                    let there: Vec<String> = members
                        .iter()
                        .filter(|m| m.name == name)
                        .map(|m| format!("{:?}", m.arity))
                        .collect();
                    format!(
                        "{current}.{name} with {n} argument(s) does not exist (there: {there:?})"
                    )
                })?;
            current = method.returns.clone();
            at = close + 1;
        } else {
            let property = members
                .iter()
                .find(|m| m.name == name && m.arity.is_none())
                .ok_or_else(|| format!("{current} has no property {name}"))?;
            current = property.returns.clone();
        }
    }
    Ok(())
}

/// The rows of every table in a Markdown text: cells, without the header and rule rows.
fn table_rows(markdown: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in markdown.lines() {
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_owned())
            .collect();
        if !in_table {
            in_table = true; // the header row
            continue;
        }
        if cells.iter().all(|c| c.starts_with("---")) {
            continue;
        }
        rows.push(cells);
    }
    rows
}

/// The code spans of a cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

fn from_pylxd() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/from-pylxd.md"))
        .expect("read docs/from-pylxd.md")
}

/// Every call in the lxd-script column exists, with that many arguments, on the type the
/// expression reaches; the legend the test uses is the page's.
#[test]
fn every_lxd_script_call_in_the_pylxd_table_exists() {
    let types = reference();
    let page = from_pylxd();
    let prose = page.split_whitespace().collect::<Vec<_>>().join(" ");
    for (var, ty) in LEGEND {
        assert!(
            ["a", "an", "is a", "is an", "a second"]
                .iter()
                .any(|article| prose.contains(&format!("`{var}` {article} `{ty}`"))),
            "the legend does not say `{var}` is a {ty}"
        );
    }
    let rows = table_rows(&page);
    assert!(rows.len() > 100, "{} rows", rows.len());
    let mut wrong = Vec::new();
    let mut checked = 0;
    for row in &rows {
        assert_eq!(row.len(), 3, "a row of three cells: {row:?}");
        if row[1] == "—" {
            assert!(!row[2].is_empty(), "a missing call says why: {row:?}");
            continue;
        }
        let spans = code_spans(&row[1]);
        assert!(!spans.is_empty(), "no code in {row:?}");
        for span in spans {
            checked += 1;
            if let Err(e) = check_expression(span, &types) {
                wrong.push(format!("`{span}`: {e}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "calls that do not exist:\n{}",
        wrong.join("\n")
    );
    assert!(checked > 100, "{checked} calls checked");
}

/// The checker itself catches a call that does not exist, a wrong arity and a missing property.
#[test]
fn the_checker_catches_mistakes() {
    let types = reference();
    assert!(check_expression("client.instances.get(name)", &types).is_ok());
    assert!(check_expression("i.execute(cmd, #{a: 1, b: [1, 2]})", &types).is_ok());
    assert!(check_expression("client.instances.fetch(name)", &types).is_err());
    assert!(check_expression("client.instances.get(a, b, c)", &types).is_err());
    assert!(check_expression("i.colour", &types).is_err());
    assert!(check_expression("Client(\"a, b\").profiles.all()", &types).is_ok());
    assert!(check_expression("nobody.x()", &types).is_err());
}

/// Each public call of pylxd 2.4 (client, models, managers) has a row.
#[test]
fn the_pylxd_table_covers_pylxd() {
    let page = from_pylxd();
    let first_column: String = table_rows(&page)
        .iter()
        .map(|row| row[0].clone())
        .collect::<Vec<_>>()
        .join("\n");
    let pylxd = [
        // Client
        "Client(",
        "project=",
        "timeout=",
        "cert=",
        "verify=",
        "host_info",
        "trusted",
        "server_clustered",
        "client.resources",
        "has_api_extension",
        "assert_has_api_extension",
        "authenticate",
        "client.events",
        "client.api",
        "client.project",
        // instances
        "instances.exists",
        "instances.get",
        "instances.all()",
        "fields=",
        "instances.create",
        "target=",
        "containers",
        "virtual_machines",
        "i.rename",
        "i.start",
        "i.stop",
        "i.restart",
        "i.freeze",
        "i.unfreeze",
        "i.state",
        "i.execute",
        "environment=",
        "user=",
        "group=",
        "cwd=",
        "stdin_payload",
        "stdout_handler",
        "stderr_handler",
        "decode=",
        "encoding=",
        "raw_interactive_execute",
        "i.migrate",
        "live=",
        "generate_migration_data",
        "i.publish",
        "restore_snapshot",
        "i.save",
        "i.delete",
        "i.sync",
        "rollback",
        "i.put",
        "i.patch",
        "raw_put",
        "raw_patch",
        "i.post",
        "marshall",
        "i.dirty",
        // snapshots
        "snapshots.get",
        "snapshots.all",
        "snapshots.exists",
        "snapshots.create",
        "s.rename",
        "s.publish",
        "s.restore",
        "s.delete",
        "s.save",
        // files
        "files.put",
        "files.get",
        "files.delete(",
        "delete_available",
        "files.mk_dir",
        "files.recursive_put",
        "files.recursive_get",
        // images
        "images.exists",
        "alias=True",
        "images.get(",
        "get_by_alias",
        "images.all",
        "images.create(",
        "create_from_simplestreams",
        "create_from_url",
        "img.export",
        "add_alias",
        "delete_alias",
        "img.copy",
        "img.save",
        "img.delete",
        // profiles, networks, projects
        "profiles.exists",
        "profiles.get",
        "profiles.all",
        "profiles.create",
        "p.rename",
        "p.save",
        "p.put",
        "p.patch",
        "p.delete",
        "networks.create",
        "n.rename",
        "n.save",
        "n.delete",
        "n.state",
        "forwards.get",
        "forwards.create",
        "fw.save",
        "fw.delete",
        "projects.create",
        "proj.rename",
        "proj.save",
        "proj.delete",
        // storage
        "storage_pools.create",
        "pool.resources",
        "pool.save",
        "pool.put",
        "pool.patch",
        "pool.delete",
        "volumes.all",
        "volumes.get",
        "volumes.create",
        "v.rename",
        "restore_from",
        "v.save",
        "v.put",
        "v.patch",
        "v.delete",
        "use_recursion",
        "v.snapshots.get",
        "v.snapshots.exists",
        "v.snapshots.create",
        "vs.rename",
        "vs.restore",
        "vs.delete",
        "vs.save",
        // operations, certificates, cluster
        "operations.get",
        "wait_for_operation",
        "op.wait",
        "extract_operation_id",
        "certificates.get",
        "certificates.all",
        "certificates.create(",
        "create_token",
        "cert.save",
        "cert.delete",
        "cluster.get",
        "cluster.enable",
        "members.get",
        "members.all",
        "cluster.certificate.put",
    ];
    let missing: Vec<&str> = pylxd
        .iter()
        .filter(|call| !first_column.contains(*call))
        .copied()
        .collect();
    assert!(missing.is_empty(), "pylxd calls without a row: {missing:?}");
}

/// The guide's sections (`## ` headings) with their `rhai` blocks joined in order.
fn guide_sections(markdown: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut in_block = false;
    for line in markdown.lines() {
        if in_block {
            if line.starts_with("```") {
                in_block = false;
            } else if let Some((_, code)) = sections.last_mut() {
                code.push_str(line);
                code.push('\n');
            }
        } else if let Some(title) = line.strip_prefix("## ") {
            sections.push((title.to_owned(), String::new()));
        } else if line == "```rhai" {
            in_block = true;
        }
    }
    sections.retain(|(_, code)| !code.is_empty());
    sections
}

/// Every section of the guide runs as written, in order, in one working directory (the local
/// files a section writes are there), and the instances it names `guide-*` are gone after the
/// last section. LXD only: the guide's backups go to the `second` server.
#[test]
fn the_guide_runs() {
    if common::testbed_for(Needs::Lxd("the guide's examples use LXD's `second` server")).is_none() {
        return;
    }
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md"))
        .expect("read docs/guide.md");
    let sections = guide_sections(&guide);
    assert!(
        sections.len() >= 10,
        "{} sections with code",
        sections.len()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let cleanup = || {
        for remote in ["main", "second"] {
            if let Ok(out) = Command::new("lxc")
                .args([
                    "list",
                    &format!("{remote}:"),
                    "--format",
                    "csv",
                    "--columns",
                    "n",
                ])
                .output()
            {
                for name in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|n| n.starts_with("guide-"))
                {
                    let _ = Command::new("lxc")
                        .args(["delete", "--force", &format!("{remote}:{name}")])
                        .output();
                }
            }
        }
    };
    cleanup();
    let mut failures = Vec::new();
    for (title, code) in &sections {
        let file = work.path().join("section.rhai");
        std::fs::write(&file, code).expect("write the section");
        let run: common::Run = common::binary()
            .current_dir(work.path())
            .arg("run")
            .arg(&file)
            .output()
            .expect("run lxd-script")
            .into();
        if run.code != 0 {
            failures.push(format!(
                "## {title}: exit {}\n{}{}",
                run.code, run.stdout, run.stderr
            ));
        }
    }
    cleanup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
