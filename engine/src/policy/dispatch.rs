//! The tenant rule compiled once per dispatch variant (see [`super::dispatch_plan`]), and the
//! choice of variant for an event.

use std::collections::HashMap;
use std::sync::Arc;

use regorus::utils::limits::ExecutionTimerConfig;

use super::bounded_range;
use super::dispatch_plan::{self, Plan};
use super::program::Program;

#[derive(Clone, Debug)]
pub(crate) struct Dispatch {
    by_name: Arc<HashMap<String, usize>>,
    other: usize,
    /// Every definition of the rule is gated on event names: for a name no gate mentions it
    /// has no value to compute.
    other_quiet: bool,
    programs: Vec<Program>,
}

impl Dispatch {
    /// Plans and compiles dispatch for the tenant `rule` of `modules` with `data` mounted;
    /// `None` when the bundle has no rule gated on an event name, or when a variant does not
    /// compile for the VM (then every event runs the whole bundle, as before).
    pub(crate) fn compile(
        modules: &[(String, String)],
        data: Option<&regorus::Value>,
        rule: &str,
        timer: ExecutionTimerConfig,
    ) -> Option<Self> {
        let Plan {
            variants,
            by_name,
            other,
            all_gated,
        } = dispatch_plan::plan(modules)?;
        // Quiet only when the rule is found by its exact name: a package written another way
        // (`packs["p"]`) does not match, and is evaluated.
        let other_quiet = rule
            .strip_prefix("data.")
            .and_then(|r| r.rsplit_once('.'))
            .is_some_and(|(package, name)| all_gated.contains(&format!("{package}:{name}")));
        let programs = variants
            .into_iter()
            .map(|modules| {
                let mut engine = regorus::Engine::new();
                engine.set_execution_timer_config(timer);
                // Compiling evaluates default rules on the interpreter.
                bounded_range::guard_interpreter(&mut engine);
                for (file, src) in modules {
                    engine.add_policy(file, src).ok()?;
                }
                if let Some(data) = data {
                    engine.add_data(data.clone()).ok()?;
                }
                Program::compile(&mut engine, rule, None, timer).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            by_name: Arc::new(by_name),
            other,
            other_quiet,
            programs,
        })
    }

    /// Whether an event named `event_name` can give the rule no value: no gate mentions the
    /// name and every definition of the rule is gated. A set rule is then empty and a complete
    /// rule undefined; the caller that knows which skips the evaluation.
    pub(crate) fn is_quiet_for(&self, event_name: Option<&str>) -> bool {
        self.other_quiet && self.index_for(event_name) == self.other
    }

    fn index_for(&self, event_name: Option<&str>) -> usize {
        event_name
            .and_then(|n| self.by_name.get(n).copied())
            .unwrap_or(self.other)
    }

    /// The program that judges an event named `event_name` (CloudTrail's `eventName`).
    pub(crate) fn program_for(&mut self, event_name: Option<&str>) -> &mut Program {
        let at = self.index_for(event_name);
        &mut self.programs[at]
    }

    /// An event name that selects each variant (`None`: a name no gate mentions), to check
    /// each variant against the whole bundle at load.
    pub(crate) fn probe_names(&self) -> Vec<Option<String>> {
        let mut probes: Vec<Option<String>> = vec![None; self.programs.len()];
        for (name, &at) in self.by_name.iter() {
            if probes[at].as_ref().is_none_or(|n| name < n) {
                probes[at] = Some(name.clone());
            }
        }
        probes
    }

    /// How many variants were compiled.
    pub(crate) fn variants(&self) -> usize {
        self.programs.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::{json, Value as Json};

    use crate::policy::input::event_input;
    use crate::policy::{PolicyContext, RulePath};
    use crate::{Bundle, Event, EventKind, Source, TenantId, TenantPolicy};

    const PACK: &str = include_str!("../../../policies/examples/cis_cloudtrail.rego");

    /// Gates in every form the plan reads, and rules it must leave alone.
    const TRICKY: &str = r#"
        package tenants.acme
        import rego.v1
        import input.raw as r

        decision := {"hits": hits, "kind": kind}

        # The only definition of `login`: kept, neutralised, for other names.
        login := true if r.eventName == "ConsoleLogin"
        hits contains "login" if login

        hits contains "bracket" if input.raw["eventName"] == "PutBucketPolicy"
        hits contains "reversed" if "PutBucketPolicy" == input.raw.eventName
        hits contains "array" if r.eventName in ["DeleteTrail", "StopLogging"]
        hits contains v if {
            r.eventName in {"StopLogging", "ConsoleLogin"}
            v := concat(":", ["stop-or-login", r.eventName])
        }
        # `r` is a local here, not the event: this rule runs for every event.
        hits contains "shadow" if {
            r := {"eventName": "Local"}
            r.eventName == "Local"
        }
        # Destructuring declares `r` too.
        hits contains "destructured" if {
            [r, _] := [{"eventName": "Local"}, 1]
            r.eventName == "Local"
        }
        # Gated only under `not`: not a gate.
        hits contains "not" if not r.eventName == "ConsoleLogin"
        # An else chain answers when the gate fails: not a gate.
        kind := "login" if r.eventName == "ConsoleLogin" else := "other"
    "#;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn compile(modules: Vec<(&str, String)>) -> TenantPolicy {
        let bundle = Bundle {
            tenant: tenant(),
            modules: modules
                .into_iter()
                .map(|(f, s)| (f.to_owned(), s))
                .collect(),
            data: Some(json!({"unused": true})),
            revision: None,
            mask: Vec::new(),
            packs: Vec::new(),
        };
        TenantPolicy::compile(&bundle, "decision").unwrap()
    }

    fn event(raw: Json) -> Event {
        Event {
            event_id: "e-1".into(),
            tenant_id: tenant(),
            source: Source::Kafka,
            kind: EventKind::Cloudtrail,
            event_time: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            principal: "alice".into(),
            action: "x".into(),
            service: "s".into(),
            resource: None,
            source_ip: None,
            account: "1".into(),
            raw,
        }
    }

    fn ctx() -> PolicyContext {
        PolicyContext::neutral(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 1).unwrap())
    }

    /// Events named by every gate, by none, and without a usable name.
    fn raws() -> Vec<Json> {
        let mut raws: Vec<Json> = [
            "ConsoleLogin",
            "PutBucketPolicy",
            "DeleteTrail",
            "StopLogging",
            "Local",
            "DescribeInstances",
            "AuthorizeSecurityGroupIngress",
            "CreateVpc",
            "DisableKey",
            "Create3",
            "Update7",
        ]
        .iter()
        .map(|n| {
            json!({
                "eventName": n,
                "eventSource": if n.contains("Vpc") || n.contains("Security") {
                    "ec2.amazonaws.com"
                } else if n.ends_with('3') {
                    "svc3.amazonaws.com"
                } else {
                    "kms.amazonaws.com"
                },
                "userIdentity": {"type": "Root"},
                "responseElements": {"ConsoleLogin": "Success"},
                "errorCode": "AccessDenied"
            })
        })
        .collect();
        raws.push(json!({"eventSource": "s3.amazonaws.com"}));
        raws.push(json!({"eventName": 42}));
        raws
    }

    /// Every event gets the answer the interpreter gives on the whole bundle.
    fn assert_same_as_interpreter(policy: &mut TenantPolicy) {
        assert!(
            policy.dispatch_variants() > 0,
            "dispatch was planned: {:?}",
            policy.fallback_reason()
        );
        for raw in raws() {
            let event = event(raw.clone());
            let dispatched = policy.evaluate(&event, &ctx()).unwrap().result;
            policy.engine.set_input(event_input(&event, &ctx()));
            let whole = policy
                .engine
                .eval_rule(policy.rule_path().to_owned())
                .unwrap();
            let whole = serde_json::to_value(&whole).unwrap();
            assert_eq!(dispatched, whole, "event {raw}");
            let query = policy
                .query(
                    &RulePath::from_url("decision").unwrap(),
                    Some(&json!({"raw": raw})),
                    &ctx(),
                )
                .unwrap()
                .result;
            policy.engine.set_input(crate::policy::input::with_context(
                Some(&json!({"raw": raw})),
                &ctx(),
            ));
            let whole = policy
                .engine
                .eval_rule(policy.rule_path().to_owned())
                .unwrap();
            assert_eq!(
                query,
                Some(serde_json::to_value(&whole).unwrap()),
                "query {raw}"
            );
        }
    }

    #[test]
    fn dispatched_pack_answers_as_the_whole_pack() {
        let pack = PACK.replace("package tenants.pack", "package tenants.acme");
        let mut policy = compile(vec![("pack.rego", pack.clone())]);
        // 13 of the 15 controls are gated; names sharing controls share a variant.
        assert!(
            policy.dispatch_variants() > 10,
            "{}",
            policy.dispatch_variants()
        );
        assert_same_as_interpreter(&mut policy);

        let mut grown = String::from("package tenants.acme\nimport rego.v1\n");
        for i in 0..20 {
            grown.push_str(&format!(
                "violations contains \"c{i}\" if {{\n\tinput.raw.eventSource == \"svc{i}.amazonaws.com\"\n\tinput.raw.eventName in {{\"Create{i}\", \"Update{i}\"}}\n}}\n"
            ));
        }
        let mut policy = compile(vec![("pack.rego", pack), ("grown.rego", grown)]);
        assert_same_as_interpreter(&mut policy);
    }

    #[test]
    fn gates_in_every_form_and_rules_that_are_not_gated() {
        let mut policy = compile(vec![("tricky.rego", TRICKY.to_owned())]);
        assert_same_as_interpreter(&mut policy);
        let shadow = policy
            .evaluate(&event(json!({"eventName": "DescribeInstances"})), &ctx())
            .unwrap()
            .result;
        assert_eq!(shadow["hits"], json!(["destructured", "not", "shadow"]));
        assert_eq!(shadow["kind"], json!("other"));
    }

    #[test]
    fn modules_without_the_rego_v1_import_are_read_as_the_engine_reads_them() {
        // Rego v1 is the engine's default: `contains` and `if` are keywords here too.
        let src = r#"
            package tenants.acme
            decision := {"hits": hits}
            hits contains "login" if {
                input.raw.eventName == "ConsoleLogin"
            }
            hits contains "trail" if {
                input.raw.eventName == "StopLogging"
            }
        "#;
        let mut policy = compile(vec![("v.rego", src.to_owned())]);
        assert_same_as_interpreter(&mut policy);
        let d = policy
            .evaluate(&event(json!({"eventName": "Other"})), &ctx())
            .unwrap();
        assert_eq!(d.result, json!({"hits": []}));
    }

    #[test]
    fn each_variant_is_checked_against_the_interpreter_at_load() {
        // regorus 0.14's VM gets this comprehension over an undefined rule wrong once the
        // input has a `raw`: the load-time check of each variant sees it.
        let src = r#"
            package tenants.acme
            import rego.v1
            decision := [x | input.raw; x := login]
            login if input.raw.eventName == "A"
        "#;
        let mut policy = compile(vec![("p.rego", src.to_owned())]);
        let status = policy.evaluator_status();
        assert_eq!(status.evaluator, crate::policy::Evaluator::Interpreter);
        assert!(status.fallback_reason.unwrap().contains("disagree"));
        for (name, want) in [("A", json!([true])), ("B", json!([]))] {
            let d = policy
                .evaluate(&event(json!({"eventName": name})), &ctx())
                .unwrap();
            assert_eq!(d.result, want, "{name}");
        }
    }

    #[test]
    fn a_bundle_the_vm_cannot_take_is_interpreted_whole() {
        let src = r#"
            package tenants.acme
            import rego.v1
            decision if hit with input.raw.eventName as "ConsoleLogin"
            hit if input.raw.eventName == "ConsoleLogin"
        "#;
        let mut policy = compile(vec![("with.rego", src.to_owned())]);
        let status = policy.evaluator_status();
        assert_eq!(status.evaluator, crate::policy::Evaluator::Interpreter);
        assert!(status.fallback_reason.is_some());
        assert_eq!(policy.dispatch_variants(), 0);
        let d = policy
            .evaluate(&event(json!({"eventName": "Other"})), &ctx())
            .unwrap();
        assert_eq!(
            d.result,
            json!(true),
            "`with` still sees the substituted name"
        );
    }

    #[test]
    fn bundles_without_gates_run_whole_on_the_vm() {
        let src = "package tenants.acme\nimport rego.v1\ndecision := input.raw.eventName";
        let mut policy = compile(vec![("p.rego", src.to_owned())]);
        let status = policy.evaluator_status();
        assert_eq!(status.evaluator, crate::policy::Evaluator::Vm);
        assert!(status.fallback_reason.unwrap().contains("gated"));
        assert_eq!(policy.dispatch_variants(), 0);
        let d = policy
            .evaluate(&event(json!({"eventName": "X"})), &ctx())
            .unwrap();
        assert_eq!(d.result, json!("X"));
    }
}
