//! A pack compiled once into its own regorus engine, in its own namespace (`packs.<name>`),
//! with no tenant's rules or data in it; run on the VM, split by event name as tenant rules
//! are (docs/decisions/0007-rule-dispatch.md), when it agrees with the interpreter.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use regorus::unstable::{Expr, Parser, Rule, RuleHead};
use serde_json::Value as Json;

use super::{call_succeeded, Finding, PackError, PackManifest, PackSource};
use crate::policy::{add_modules_within, guard_interpreter, timer, Dispatch, PolicyError, Program};

/// The rule every pack defines: the set of control ids that fired on the input.
const FIRED: &str = "fired";

/// Cloning is cheap (programs are shared) and gives an independent evaluator.
#[derive(Clone)]
pub struct CompiledPack {
    manifest: Arc<PackManifest>,
    digest: Arc<str>,
    rule: String,
    engine: regorus::Engine,
    program: Option<Program>,
    dispatch: Option<Dispatch>,
    index: Arc<HashMap<String, usize>>,
}

impl std::fmt::Debug for CompiledPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPack")
            .field("pack", &self.manifest.pack_ref().to_string())
            .field("program", &self.program.is_some())
            .field("dispatch", &self.dispatch)
            .finish_non_exhaustive()
    }
}

impl CompiledPack {
    /// Compiles `source`, checking that its modules stay in `packs.<name>`, that every
    /// `fired` rule names a declared control and that every control has one.
    pub fn compile(source: &PackSource, eval_timeout: Duration) -> Result<Self, PackError> {
        if source.modules.is_empty() {
            return Err(PackError::NoModules);
        }
        let pack = source.manifest.pack_ref();
        let package = pack.rego_package();
        check_controls(source)?;
        let timer = timer(eval_timeout);
        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(timer);
        engine.set_strict_builtin_errors(false);
        guard_interpreter(&mut engine);
        add_modules_within(
            &mut engine,
            source.modules.iter().map(|(f, s)| (f, s)),
            &package,
        )
        .map_err(|e| match e {
            PolicyError::WrongPackage {
                file,
                package,
                expected,
            } => PackError::WrongPackage {
                file,
                package,
                expected,
            },
            PolicyError::Rego { file, message } => PackError::Rego { file, message },
            other => PackError::Eval(other.to_string()),
        })?;
        let rule = format!("data.{package}.{FIRED}");
        let index = source
            .manifest
            .controls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let mut compiled = Self {
            manifest: Arc::new(source.manifest.clone()),
            digest: source.digest().into(),
            rule,
            engine,
            program: None,
            dispatch: None,
            index: Arc::new(index),
        };
        // A rule that fails on every input is a load error, not a dead letter per event.
        compiled
            .reference(None)
            .map_err(|e| PackError::Eval(e.to_string()))?;
        compiled.program = Program::compile(&mut compiled.engine, &compiled.rule, None, timer).ok();
        if compiled.program.is_some() && !compiled.agrees(None) {
            compiled.program = None;
        }
        if compiled.program.is_some() {
            compiled.dispatch = Dispatch::compile(&source.modules, None, &compiled.rule, timer);
            let probes = compiled
                .dispatch
                .as_ref()
                .map(Dispatch::probe_names)
                .unwrap_or_default();
            if probes.iter().any(|name| !compiled.agrees(name.as_deref())) {
                compiled.dispatch = None;
            }
        }
        Ok(compiled)
    }

    pub fn manifest(&self) -> &Arc<PackManifest> {
        &self.manifest
    }

    /// Content digest of the pack's manifest and modules.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// `"dispatch"`, `"vm"` or `"interpreter"`: which evaluator answers.
    pub fn evaluator(&self) -> &'static str {
        match (&self.dispatch, &self.program) {
            (Some(_), _) => "dispatch",
            (None, Some(_)) => "vm",
            (None, None) => "interpreter",
        }
    }

    /// The controls that fired on `input` (a policy input whose `raw` is the CloudTrail
    /// record `raw`), one finding each, in the manifest's order.
    pub fn findings(
        &mut self,
        input: regorus::Value,
        raw: &Json,
    ) -> Result<Vec<Finding>, PolicyError> {
        let event_name = raw.get("eventName").and_then(Json::as_str);
        // `fired` is a set whose every rule is gated on names this one is not among: empty.
        if self
            .dispatch
            .as_ref()
            .is_some_and(|d| d.is_quiet_for(event_name))
        {
            return Ok(Vec::new());
        }
        let value = match (&mut self.dispatch, &mut self.program) {
            (Some(dispatch), _) => dispatch.program_for(event_name).eval(&self.rule, input)?,
            (None, Some(program)) => program.eval(&self.rule, input)?,
            (None, None) => {
                self.engine.set_input(input);
                self.engine
                    .eval_rule(self.rule.clone())
                    .map_err(PolicyError::from_eval)?
            }
        };
        let fired = match &value {
            regorus::Value::Undefined => return Ok(Vec::new()),
            v => v.as_set().map_err(|_| {
                PolicyError::Eval(format!("{} is not a set of control ids", self.rule))
            })?,
        };
        let mut at: Vec<usize> = fired
            .iter()
            .filter_map(|id| id.as_string().ok())
            // Every id a rule can fire was checked against the manifest at compile time.
            .filter_map(|id| self.index.get(id.as_ref()).copied())
            .collect();
        at.sort_unstable();
        let succeeded = call_succeeded(raw);
        Ok(at
            .into_iter()
            .map(|i| {
                let (kind, id) = self.manifest.controls[i].resource_of(raw);
                Finding {
                    manifest: self.manifest.clone(),
                    control_index: i,
                    resource_type: kind.to_owned(),
                    resource_id: id,
                    succeeded,
                }
            })
            .collect())
    }

    /// The interpreter's answer for an event named `event_name`, the reference the faster
    /// evaluators are checked against.
    fn reference(&mut self, event_name: Option<&str>) -> Result<regorus::Value, PolicyError> {
        self.engine.set_input(probe_input(event_name));
        self.engine
            .eval_rule(self.rule.clone())
            .map_err(PolicyError::from_eval)
    }

    /// Whether the VM and the dispatch variant answer an event named `event_name` as the
    /// interpreter does.
    fn agrees(&mut self, event_name: Option<&str>) -> bool {
        let Ok(want) = self.reference(event_name) else {
            return false;
        };
        let rule = self.rule.clone();
        let on_vm = self
            .program
            .as_mut()
            .map(|p| p.eval(&rule, probe_input(event_name)));
        if on_vm.is_some_and(|got| got.ok().as_ref() != Some(&want)) {
            return false;
        }
        if let Some(dispatch) = &mut self.dispatch {
            if dispatch.is_quiet_for(event_name) {
                // Skipped: the interpreter must find nothing either.
                let nothing = match &want {
                    regorus::Value::Undefined => true,
                    v => v.as_set().is_ok_and(|s| s.is_empty()),
                };
                if !nothing {
                    return false;
                }
            }
            let got = dispatch
                .program_for(event_name)
                .eval(&rule, probe_input(event_name));
            if got.ok().as_ref() != Some(&want) {
                return false;
            }
        }
        true
    }
}

fn probe_input(event_name: Option<&str>) -> regorus::Value {
    let raw = event_name.map_or_else(
        || serde_json::json!({}),
        |n| serde_json::json!({"eventName": n}),
    );
    regorus::Value::from(serde_json::json!({"raw": raw}))
}

/// Reads the ids the `fired` rules name, and checks them against the manifest both ways.
fn check_controls(source: &PackSource) -> Result<(), PackError> {
    let mut named = BTreeSet::new();
    for (file, src) in &source.modules {
        let rego = |message: String| PackError::Rego {
            file: file.clone(),
            message,
        };
        let parsed = regorus::Source::from_contents(file.clone(), src.clone())
            .and_then(|s| {
                let mut parser = Parser::new(&s)?;
                parser.enable_rego_v1()?;
                parser.parse()
            })
            .map_err(|e| rego(e.to_string()))?;
        for rule in &parsed.policy {
            let Rule::Spec { head, .. } = rule.as_ref() else {
                continue;
            };
            let key = match head {
                RuleHead::Set { refr, key, .. } if refr.span().text() == FIRED => key,
                RuleHead::Compr { refr, .. } | RuleHead::Func { refr, .. }
                    if refr.span().text() == FIRED =>
                {
                    return Err(PackError::UnnamedControl {
                        file: file.clone(),
                        key: "a rule that is not `fired contains …`".into(),
                    })
                }
                _ => continue,
            };
            let id = match key.as_ref().map(|k| k.as_ref()) {
                Some(Expr::String { value, .. } | Expr::RawString { value, .. }) => {
                    value.as_string().ok().map(|s| s.to_string())
                }
                _ => None,
            };
            let id = id.ok_or_else(|| PackError::UnnamedControl {
                file: file.clone(),
                key: key
                    .as_ref()
                    .map_or("nothing", |k| k.span().text())
                    .to_owned(),
            })?;
            if source.manifest.control(&id).is_none() {
                return Err(PackError::UndeclaredControl {
                    file: file.clone(),
                    control: id,
                });
            }
            named.insert(id);
        }
    }
    match source
        .manifest
        .controls
        .iter()
        .find(|c| !named.contains(&c.id))
    {
        Some(c) => Err(PackError::ControlWithoutRule(c.id.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(ids: &[&str]) -> PackManifest {
        let controls: Vec<Json> = ids
            .iter()
            .map(|id| {
                json!({"id": id, "title": id, "severity": "high",
                       "resource": {"type": "AWS::S3::Bucket", "ids": ["/requestParameters/bucketName"]},
                       "rationale": "r", "remediation": {"text": "t"}, "on_failure": *id == "denied"})
            })
            .collect();
        let m = json!({"name": "p", "version": "1.0.0", "title": "P", "controls": controls});
        PackManifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap()
    }

    fn source(ids: &[&str], rego: &str) -> PackSource {
        PackSource {
            manifest: manifest(ids),
            modules: vec![("p.rego".into(), rego.into())],
        }
    }

    fn compile(ids: &[&str], rego: &str) -> Result<CompiledPack, PackError> {
        CompiledPack::compile(&source(ids, rego), Duration::from_millis(100))
    }

    const PACK: &str = r#"
        package packs.p
        import rego.v1
        fired contains "public" if {
            input.raw.eventName == "PutBucketAcl"
            input.raw.requestParameters["x-amz-acl"] == "public-read"
        }
        fired contains "denied" if startswith(input.raw.errorCode, "AccessDenied")
    "#;

    fn findings(pack: &mut CompiledPack, raw: Json) -> Vec<(String, String, bool, bool)> {
        let input = regorus::Value::from(json!({"raw": raw.clone()}));
        pack.findings(input, &raw)
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f.control().id.clone(),
                    f.resource_id.clone(),
                    f.succeeded,
                    f.violates(),
                )
            })
            .collect()
    }

    #[test]
    fn a_finding_names_its_control_resource_and_whether_the_call_succeeded() {
        let mut pack = compile(&["public", "denied"], PACK).unwrap();
        assert_eq!(pack.evaluator(), "dispatch");
        let acl = json!({"eventName": "PutBucketAcl", "recipientAccountId": "1",
                         "requestParameters": {"bucketName": "b", "x-amz-acl": "public-read"}});
        assert_eq!(
            findings(&mut pack, acl.clone()),
            [("public".into(), "b".into(), true, true)]
        );
        let mut refused = acl;
        refused["errorCode"] = json!("AccessDenied");
        // A refused attempt: counted by both, a violation only of the control about refusals.
        assert_eq!(
            findings(&mut pack, refused),
            [
                ("public".into(), "b".into(), false, false),
                ("denied".into(), "b".into(), false, true)
            ]
        );
        assert!(findings(&mut pack, json!({"eventName": "GetObject"})).is_empty());
    }

    #[test]
    fn a_pack_whose_every_rule_is_gated_is_skipped_for_other_names_and_still_fires() {
        let gated = r#"
            package packs.p
            import rego.v1
            fired contains "public" if {
                input.raw.eventName == "PutBucketAcl"
                input.raw.requestParameters["x-amz-acl"] == "public-read"
            }
        "#;
        let mut pack = compile(&["public"], gated).unwrap();
        let quiet = |p: &CompiledPack, name: &str| {
            p.dispatch
                .as_ref()
                .is_some_and(|d| d.is_quiet_for(Some(name)))
        };
        assert!(quiet(&pack, "GetObject") && !quiet(&pack, "PutBucketAcl"));
        assert!(findings(
            &mut pack,
            json!({"eventName": "GetObject", "errorCode": "AccessDenied"})
        )
        .is_empty());
        let acl = json!({"eventName": "PutBucketAcl",
                         "requestParameters": {"bucketName": "b", "x-amz-acl": "public-read"}});
        assert_eq!(findings(&mut pack, acl).len(), 1);
        // The package written as a path with a string: not matched, so never skipped.
        let spelt = compile(
            &["public"],
            &gated.replace("package packs.p", "package packs[\"p\"]"),
        )
        .unwrap();
        assert!(!quiet(&spelt, "GetObject") && spelt.evaluator() == "dispatch");
        // A rule no name gates runs for every name: nothing is skipped.
        let mut both = compile(&["public", "denied"], PACK).unwrap();
        assert!(!quiet(&both, "GetObject"));
        assert_eq!(
            findings(
                &mut both,
                json!({"eventName": "GetObject", "errorCode": "AccessDenied"})
            )
            .len(),
            1
        );
    }

    #[test]
    fn rules_and_manifest_must_agree() {
        assert_eq!(
            compile(&["public"], PACK).unwrap_err(),
            PackError::UndeclaredControl {
                file: "p.rego".into(),
                control: "denied".into()
            }
        );
        assert_eq!(
            compile(&["public", "denied", "extra"], PACK).unwrap_err(),
            PackError::ControlWithoutRule("extra".into())
        );
        let computed =
            "package packs.p\nimport rego.v1\nfired contains id if { id := input.raw.x }";
        assert!(matches!(
            compile(&["x"], computed),
            Err(PackError::UnnamedControl { .. })
        ));
        let elsewhere = "package tenants.acme\nimport rego.v1\nfired contains \"x\" if { true }";
        assert!(matches!(
            compile(&["x"], elsewhere),
            Err(PackError::WrongPackage { .. })
        ));
        assert!(matches!(
            compile(&["x"], "package packs.p\nfired contains \"x\" if {"),
            Err(PackError::Rego { .. })
        ));
    }
}
