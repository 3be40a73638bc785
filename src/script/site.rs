//! `client.plan(site)` and `client.apply(site)`: desired state, and the `Plan` type.

use rhai::{Array, Dynamic, Map};

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::convert::{dynamic_to_json, json_to_dynamic};
use super::errors::{RhaiResultOf, ScriptErrorKind, invalid_argument, script_error_with};
use super::options::Options;
use crate::lxd::site::{self, ApplyOptions, Plan, PlanOptions, Site};

/// A plan, as scripts hold it.
#[derive(Debug, Clone)]
pub struct ScriptPlan(pub Plan);

/// Reads a site map.
fn site_of(call: &str, site: &Map) -> RhaiResultOf<Site> {
    let value = dynamic_to_json(&Dynamic::from(site.clone()))
        .map_err(|e| invalid_argument(format!("{call}: {e}")))?;
    Site::from_value(&value).map_err(|e| invalid_argument(format!("{call}: {e}")))
}

/// Plans `site` against `client`.
pub fn plan(client: &Client, site: &Site, prune: bool) -> RhaiResultOf<Plan> {
    client
        .bridge
        .block_on(site::plan(&client.lxd, site, PlanOptions { prune }))
}

/// The options of `apply(site, #{prune, parallel, replace})`.
pub struct ApplyArgs {
    /// Delete marked objects the site no longer names.
    pub prune: bool,
    /// How the plan is carried out.
    pub apply: ApplyOptions,
}

impl ApplyArgs {
    fn from_map(options: Map) -> RhaiResultOf<ApplyArgs> {
        let o = Options::new("apply", options, &["prune", "parallel", "replace"])?;
        let parallel = match o.int("parallel")? {
            None => ApplyOptions::default().parallel,
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                return Err(invalid_argument(format!(
                    "apply: parallel must be 1 or more, not {n}"
                )));
            }
        };
        Ok(ApplyArgs {
            prune: o.bool("prune")?.unwrap_or(false),
            apply: ApplyOptions {
                parallel,
                replace: o.bool("replace")?.unwrap_or(false),
            },
        })
    }
}

/// Plans and carries out `site`; returns the plan carried out, or throws `Apply` with what was
/// done, what failed and what was skipped.
pub fn apply(client: &Client, site: &Site, args: &ApplyArgs) -> RhaiResultOf<Plan> {
    let plan = plan(client, site, args.prune)?;
    let report = client
        .bridge
        .block_on(site::apply(&client.lxd, &plan, args.apply))?;
    if report.failed.is_empty() {
        return Ok(plan);
    }
    let strings = |items: &[String]| -> Array { items.iter().map(|s| s.clone().into()).collect() };
    let failed: Array = report
        .failed
        .iter()
        .map(|(title, e)| {
            let mut m = Map::new();
            m.insert("change".into(), title.clone().into());
            m.insert("kind".into(), e.kind().as_str().into());
            m.insert("message".into(), e.to_string().into());
            Dynamic::from(m)
        })
        .collect();
    let listed: Vec<String> = report
        .failed
        .iter()
        .map(|(title, e)| format!("  {title}: {}: {e}", e.kind().as_str()))
        .collect();
    let message = format!(
        "{} of {} changes failed:\n{}\n{} done, {} skipped (they depend on a failed one); apply again once fixed: it goes on from where the server is",
        report.failed.len(),
        plan.changes.len(),
        listed.join("\n"),
        report.done.len(),
        report.skipped.len()
    );
    Err(script_error_with(
        ScriptErrorKind::Apply,
        message,
        Dynamic::UNIT,
        [
            ("done", strings(&report.done).into()),
            ("failed", failed.into()),
            ("skipped", strings(&report.skipped).into()),
        ],
    ))
}

/// A plan's changes as script maps: `#{action, kind, name, diff}`, each diff `#{field, old, new}`.
fn changes(plan: &Plan) -> Array {
    plan.changes
        .iter()
        .map(|c| {
            let diff: Array = c
                .diff
                .iter()
                .map(|f| {
                    let mut m = Map::new();
                    m.insert("field".into(), f.field.clone().into());
                    m.insert(
                        "old".into(),
                        f.old.as_ref().map_or(Dynamic::UNIT, json_to_dynamic),
                    );
                    m.insert(
                        "new".into(),
                        f.new.as_ref().map_or(Dynamic::UNIT, json_to_dynamic),
                    );
                    Dynamic::from(m)
                })
                .collect();
            let mut m = Map::new();
            m.insert("action".into(), c.action.as_str().into());
            m.insert("kind".into(), c.kind.as_str().into());
            m.insert("name".into(), c.name.clone().into());
            m.insert("diff".into(), diff.into());
            Dynamic::from(m)
        })
        .collect()
}

/// Registers `plan`, `apply` and `Plan`.
pub fn register(api: &mut Api) {
    api.register_type_with_name::<ScriptPlan>("Plan");
    rhai::FuncRegistration::new("plan")
        .with_comments(["/// What apply(site) would do, changing nothing: a Plan (print it, or read plan.changes). The site is #{projects, networks, profiles, volumes, instances}, each a map of name to the fields that matter; only what it names is compared."])
        .register_into(api, |c: &mut Client, site: Map| -> RhaiResultOf<ScriptPlan> {
            Ok(ScriptPlan(plan(c, &site_of("plan", &site)?, false)?))
        });
    rhai::FuncRegistration::new("plan")
        .with_comments(["/// plan(site) with options #{prune}: prune also plans deleting what apply created and the site no longer names."])
        .register_into(api, |c: &mut Client, site: Map, options: Map| -> RhaiResultOf<ScriptPlan> {
            let o = Options::new("plan", options, &["prune"])?;
            let prune = o.bool("prune")?.unwrap_or(false);
            Ok(ScriptPlan(plan(c, &site_of("plan", &site)?, prune)?))
        });
    rhai::FuncRegistration::new("apply")
        .with_comments(["/// Makes the server as the site says (creating, updating; a replace is refused) and returns the plan carried out; a second apply of the same site changes nothing. Throws Apply with e.done, e.failed, e.skipped when changes fail."])
        .register_into(api, |c: &mut Client, site: Map| -> RhaiResultOf<ScriptPlan> {
            let args = ApplyArgs::from_map(Map::new())?;
            Ok(ScriptPlan(apply(c, &site_of("apply", &site)?, &args)?))
        });
    rhai::FuncRegistration::new("apply")
        .with_comments(["/// apply(site) with options #{prune (delete what apply created and the site no longer names), parallel (changes at once, 8), replace (allow deleting and remaking what cannot change in place)}."])
        .register_into(api, |c: &mut Client, site: Map, options: Map| -> RhaiResultOf<ScriptPlan> {
            let args = ApplyArgs::from_map(options)?;
            Ok(ScriptPlan(apply(c, &site_of("apply", &site)?, &args)?))
        });
    rhai::FuncRegistration::new("is_empty")
        .with_comments(["/// True when the server already is as the site says."])
        .register_into(api, |p: &mut ScriptPlan| p.0.is_empty());
    rhai::FuncRegistration::new_getter("changes")
        .with_comments(["/// The changes, in order: #{action (create, update, replace, delete), kind, name, diff: [#{field, old, new}]}."])
        .register_into(api, |p: &mut ScriptPlan| changes(&p.0));
    super::register_display(api, |p: &ScriptPlan| p.0.render(false));
}
