//! One tenant's compiled policy: its own regorus engine, nothing shared with other tenants.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::{json, Value as Json};

use super::bounded_range;
use super::decision::allowed_by;
use super::dispatch::Dispatch;
use super::input::event_input;
use super::namespace::add_modules_within;
use super::program::Program;
use super::query::KnownRules;
use super::{
    Bundle, CompileOptions, Decision, Evaluator, EvaluatorStatus, InputMask, PolicyContext,
    PolicyError, RulePath,
};
use crate::compliance::CompiledPack;
use crate::decode::fields::reject_nul;
use crate::{ids, Event, EventKind, TenantId};

/// How long one evaluation may run before it is stopped (guard rail against loops and
/// exploding comprehensions); see [`CompileOptions`].
pub const DEFAULT_EVAL_TIMEOUT: Duration = Duration::from_millis(100);

/// Cloning is cheap (the compiled modules are shared) and gives an independent evaluator: how
/// several threads answer one tenant's queries at once.
#[derive(Clone)]
pub struct TenantPolicy {
    pub(crate) tenant: TenantId,
    pub(crate) engine: regorus::Engine,
    rule_path: String,
    pub(crate) revision: String,
    pub(crate) digest: std::sync::Arc<str>,
    mask: InputMask,
    pub(crate) known_rules: KnownRules,
    /// The rules compiled to the VM; `None` when the VM could not take the tenant rule.
    pub(crate) program: Option<Program>,
    /// The tenant rule split by event name; `None` when the bundle does not lend itself.
    pub(crate) dispatch: Option<Dispatch>,
    /// Why a slower evaluator than the configured one answers, when one does.
    fallback_reason: Option<String>,
    /// The compliance packs the bundle enabled, compiled each in its own engine.
    packs: Vec<CompiledPack>,
}

impl std::fmt::Debug for TenantPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPolicy")
            .field("tenant", &self.tenant)
            .field("rule_path", &self.rule_path)
            .field("revision", &self.revision)
            .field("program", &self.program)
            .field("dispatch", &self.dispatch)
            .finish_non_exhaustive()
    }
}

impl TenantPolicy {
    /// Compiles `bundle` and checks that `rule` (relative to the tenant package, e.g. `decision`)
    /// can be evaluated. Every module must declare package `tenants.{tenant}` or one below it, so
    /// a tenant can never define, or read, rules in another tenant's namespace.
    pub fn compile(bundle: &Bundle, rule: &str) -> Result<Self, PolicyError> {
        Self::compile_with(bundle, rule, &CompileOptions::default())
    }

    /// As [`Self::compile`], with a chosen evaluator and evaluation time limit.
    pub fn compile_with(
        bundle: &Bundle,
        rule: &str,
        options: &CompileOptions,
    ) -> Result<Self, PolicyError> {
        if bundle.modules.is_empty() {
            return Err(PolicyError::NoModules(bundle.tenant.to_string()));
        }
        let rule = RulePath::from_dotted(rule)?;
        let mask = InputMask::parse(&bundle.mask)?;
        let expected = format!("data.{}", bundle.tenant.rego_package());
        let mut engine = regorus::Engine::new();
        let timer = timer(options.eval_timeout);
        engine.set_execution_timer_config(timer);
        // As OPA (without --strict-builtin-errors) and as regorus's VM: a builtin's error makes
        // its expression undefined.
        engine.set_strict_builtin_errors(false);
        bounded_range::guard_interpreter(&mut engine);
        add_modules_within(
            &mut engine,
            bundle.modules.iter().map(|(f, s)| (f, s)),
            &bundle.tenant.rego_package(),
        )?;
        let mut mounted = None;
        if let Some(data) = &bundle.data {
            if !data.is_object() {
                return Err(PolicyError::DataNotObject);
            }
            // Mounted where OPA would mount a bundle's data.json: under the tenant's own path.
            let value = regorus::Value::from(json!({"tenants": {bundle.tenant.as_str(): data}}));
            engine
                .add_data(value.clone())
                .map_err(|e| PolicyError::Rego {
                    file: "data.json".into(),
                    message: e.to_string(),
                })?;
            mounted = Some(value);
        }
        let packs = bundle
            .packs
            .iter()
            .map(|source| {
                CompiledPack::compile(source, options.eval_timeout).map_err(|error| {
                    PolicyError::Pack {
                        pack: source.manifest.pack_ref().to_string(),
                        error,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut policy = Self {
            packs,
            tenant: bundle.tenant.clone(),
            engine,
            rule_path: rule.under(&bundle.tenant.rego_package()),
            revision: bundle.effective_revision(),
            digest: bundle.digest().into(),
            mask,
            known_rules: KnownRules::default(),
            program: None,
            dispatch: None,
            fallback_reason: None,
        };
        // Probe once so that a missing rule or a compile-time error is a load error, not a
        // dead letter for every event that follows.
        policy.engine.set_input(regorus::Value::new_object());
        let probe = policy
            .engine
            .eval_rule(policy.rule_path.clone())
            .map_err(|e| PolicyError::RuleUnusable {
                rule: policy.rule_path.clone(),
                message: e.to_string(),
            })?;
        if options.evaluator == Evaluator::Interpreter {
            policy.fallback_reason = Some("configured (policy.evaluator)".into());
            return Ok(policy);
        }
        match policy.compile_program(&expected, timer, &probe) {
            Ok(program) => policy.program = Some(program),
            Err(why) => policy.fallback_reason = Some(why),
        }
        // Only on the VM: it refuses `with`, which dispatch could not see through.
        if policy.program.is_some() && options.evaluator == Evaluator::Dispatch {
            policy.dispatch =
                Dispatch::compile(&bundle.modules, mounted.as_ref(), &policy.rule_path, timer);
            if let Some(names) = policy.dispatch.as_ref().map(Dispatch::probe_names) {
                // One event per variant, judged by the interpreter on the whole bundle, by the
                // VM on the whole bundle, and by the variant: any disagreement sets the faster
                // evaluator aside.
                for name in &names {
                    if let Err(why) = policy.agrees_on(name.as_deref()) {
                        policy.dispatch = None;
                        if why.starts_with("the VM") {
                            policy.program = None;
                        }
                        policy.fallback_reason = Some(why);
                        return Ok(policy);
                    }
                }
            }
            if policy.dispatch.is_none() {
                policy.fallback_reason = Some(
                    "no rule is gated on input.raw.eventName (or a variant did not compile): \
                     every event runs the whole bundle on the VM"
                        .into(),
                );
            }
        }
        Ok(policy)
    }

    /// Whether the VM, and the dispatch variant for `event_name`, answer an event with that
    /// name as the interpreter does on the whole bundle (the same value, or an error for all).
    fn agrees_on(&mut self, event_name: Option<&str>) -> Result<(), String> {
        let raw = event_name.map_or_else(|| json!({}), |n| json!({"eventName": n}));
        let input = regorus::Value::from(json!({"raw": raw}));
        self.engine.set_input(input.clone());
        let reference = self.engine.eval_rule(self.rule_path.clone()).ok();
        let same = |got: Result<regorus::Value, PolicyError>| match (&reference, got) {
            (Some(want), Ok(got)) => &got == want,
            (None, Err(_)) => true,
            _ => false,
        };
        let on_vm = self
            .program
            .as_mut()
            .map(|p| p.eval(&self.rule_path, input.clone()));
        if on_vm.is_some_and(|got| !same(got)) {
            return Err(format!(
                "the VM and the interpreter disagree on an event named {event_name:?}"
            ));
        }
        if let Some(dispatch) = &mut self.dispatch {
            let got = dispatch
                .program_for(event_name)
                .eval(&self.rule_path, input);
            if !same(got) {
                return Err(format!(
                    "dispatch and the whole bundle disagree on an event named {event_name:?}"
                ));
            }
        }
        Ok(())
    }

    /// Compiles the rules for the VM and checks that it answers the load probe as the
    /// interpreter did; any doubt leaves the interpreter in charge.
    fn compile_program(
        &mut self,
        package: &str,
        timer: ExecutionTimerConfig,
        probe: &regorus::Value,
    ) -> Result<Program, String> {
        let mut program =
            Program::compile(&mut self.engine, &self.rule_path, Some(package), timer)?;
        let on_vm = program
            .eval(&self.rule_path, regorus::Value::new_object())
            .map_err(|e| e.to_string())?;
        if &on_vm != probe {
            return Err(format!(
                "the VM answered the load probe with {on_vm} where the interpreter gave {probe}"
            ));
        }
        // The other rules, for decision API queries: one that the VM answers differently from
        // the interpreter on an empty input leaves the VM with the tenant rule alone.
        for path in program.entry_points() {
            if path == self.rule_path {
                continue;
            }
            self.engine.set_input(regorus::Value::new_object());
            let want = self.engine.eval_rule(path.clone()).ok();
            let got = program.eval(&path, regorus::Value::new_object()).ok();
            if want != got {
                return Program::compile(&mut self.engine, &self.rule_path, None, timer);
            }
        }
        Ok(program)
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Content digest of the bundle this was compiled from.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Input fields removed before a decision is logged or streamed.
    pub fn mask(&self) -> &InputMask {
        &self.mask
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn rule_path(&self) -> &str {
        &self.rule_path
    }

    /// The evaluator in use, and why not a faster one.
    pub fn evaluator_status(&self) -> EvaluatorStatus {
        let evaluator = match (&self.dispatch, &self.program) {
            (Some(_), _) => Evaluator::Dispatch,
            (None, Some(_)) => Evaluator::Vm,
            (None, None) => Evaluator::Interpreter,
        };
        EvaluatorStatus {
            evaluator,
            dispatch_variants: self.dispatch_variants(),
            fallback_reason: self.fallback_reason.clone(),
        }
    }

    /// How many event-name variants the tenant rule was compiled into; 0 when every event runs
    /// the whole bundle.
    pub fn dispatch_variants(&self) -> usize {
        self.dispatch.as_ref().map_or(0, Dispatch::variants)
    }

    /// Why rules are not evaluated by the fastest evaluator configured; `None` when they are.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Judges one event. The caller must pass only this tenant's events.
    pub fn evaluate(
        &mut self,
        event: &Event,
        ctx: &PolicyContext,
    ) -> Result<Decision, PolicyError> {
        debug_assert_eq!(event.tenant_id, self.tenant);
        let started = Instant::now();
        let event_name = event.raw.get("eventName").and_then(Json::as_str);
        let input = event_input(event, ctx);
        let mut findings = Vec::new();
        let mut resource_change = None;
        // Packs judge CloudTrail records; an agent's event is not one.
        if event.kind == EventKind::Cloudtrail && !self.packs.is_empty() {
            for pack in &mut self.packs {
                findings.extend(pack.findings(input.clone(), &event.raw)?);
            }
            resource_change = crate::compliance::resource_change(&event.raw);
        }
        let result = self.eval_value(input, event_name)?;
        let eval_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Decision {
            decision_id: ids::decision_id(
                self.tenant.as_str(),
                &event.event_id,
                event.event_time,
                &self.rule_path,
            ),
            event_id: event.event_id.clone(),
            event_time: event.event_time,
            tenant_id: self.tenant.clone(),
            rule_path: self.rule_path.clone(),
            allowed: allowed_by(&result),
            result,
            bundle_revision: self.revision.clone(),
            policy_digest: self.digest.clone(),
            eval_micros,
            // Set by whoever scored the event (the event path), which knows the model version.
            anomaly_score: None,
            anomaly_model_version: None,
            protection_level: None,
            findings,
            resource_change,
        })
    }

    /// The compliance packs this tenant enabled.
    pub fn packs(&self) -> &[CompiledPack] {
        &self.packs
    }

    /// Evaluates the tenant rule on `input`; `null` when the rule is undefined.
    fn eval_value(
        &mut self,
        input: regorus::Value,
        event_name: Option<&str>,
    ) -> Result<Json, PolicyError> {
        let value = match (&mut self.dispatch, &mut self.program) {
            (Some(dispatch), _) => dispatch
                .program_for(event_name)
                .eval(&self.rule_path, input)?,
            (None, Some(program)) => program.eval(&self.rule_path, input)?,
            (None, None) => {
                self.engine.set_input(input);
                self.engine
                    .eval_rule(self.rule_path.clone())
                    .map_err(PolicyError::from_eval)?
            }
        };
        Ok(to_json(value)?.unwrap_or(Json::Null))
    }
}

/// Checks for elapsed time every few work units: often enough to stop a runaway loop within
/// about a millisecond of the limit, rarely enough to cost nothing measurable.
pub(crate) fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(64).expect("non-zero"),
    }
}

/// A rule value as JSON; `None` when undefined.
pub(crate) fn to_json(value: regorus::Value) -> Result<Option<Json>, PolicyError> {
    if value == regorus::Value::Undefined {
        return Ok(None);
    }
    let json = serde_json::to_value(&value).map_err(|e| PolicyError::Eval(e.to_string()))?;
    // Postgres cannot store U+0000; a result carrying one is this event's failure, not a
    // batch-wide write error.
    reject_nul(&json).map_err(|_| {
        PolicyError::Eval("the rule's value contains a NUL character (U+0000)".into())
    })?;
    Ok(Some(json))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::{EventKind, Source};

    fn tenant(t: &str) -> TenantId {
        TenantId::parse(t).unwrap()
    }

    fn bundle(t: &str, src: &str) -> Bundle {
        Bundle {
            tenant: tenant(t),
            modules: vec![("policy.rego".into(), src.into())],
            data: None,
            revision: None,
            mask: Vec::new(),
            packs: Vec::new(),
        }
    }

    fn event(t: &str, action: &str, raw: Json) -> Event {
        Event {
            event_id: "e-1".into(),
            tenant_id: tenant(t),
            source: Source::Mqtt,
            kind: EventKind::Device,
            event_time: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            principal: "alice".into(),
            action: action.into(),
            service: "agent".into(),
            resource: None,
            source_ip: None,
            account: "laptop".into(),
            raw,
        }
    }

    fn ctx() -> PolicyContext {
        PolicyContext::neutral(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 1).unwrap())
    }

    const ABAC: &str = r#"
        package tenants.acme
        import rego.v1
        default decision := {"allow": false, "reasons": ["no rule allowed this"]}
        decision := {"allow": true, "reasons": []} if {
            input.event.action == "read"
            input.raw.resource.region in data.tenants.acme.regions
        }
    "#;

    #[test]
    fn enabled_packs_report_findings_on_cloudtrail_events_only() {
        use crate::compliance::{PackManifest, PackSource};
        let manifest = PackManifest::parse(
            br#"{"name": "p", "version": "1.0.0", "title": "P", "controls": [{"id": "stop",
                 "title": "t", "severity": "critical", "rationale": "r",
                 "resource": {"type": "AWS::CloudTrail::Trail", "ids": ["/requestParameters/name"]},
                 "remediation": {"text": "t"}}]}"#,
        )
        .unwrap();
        let pack = PackSource {
            manifest,
            modules: vec![(
                "p.rego".into(),
                "package packs.p\nimport rego.v1\nfired contains \"stop\" if input.raw.eventName == \"StopLogging\"".into(),
            )],
        };
        let plain = bundle(
            "acme",
            "package tenants.acme\nimport rego.v1\ndecision := true",
        );
        let mut with_pack = plain.clone();
        with_pack.packs = vec![pack.clone()];
        assert_ne!(
            plain.digest(),
            with_pack.digest(),
            "a pack is part of what decides"
        );
        let mut p = TenantPolicy::compile(&with_pack, "decision").unwrap();
        let raw = json!({"eventName": "StopLogging", "requestParameters": {"name": "main"}});
        let mut trail = event("acme", "StopLogging", raw.clone());
        trail.kind = EventKind::Cloudtrail;
        let d = p.evaluate(&trail, &ctx()).unwrap();
        assert!(d.allowed, "findings do not change the tenant's verdict");
        assert_eq!(d.findings.len(), 1);
        assert_eq!(d.findings[0].resource_id, "main");
        assert_eq!(
            serde_json::to_value(&d.findings[0]).unwrap()["control"],
            json!("stop")
        );
        let device = event("acme", "StopLogging", raw);
        assert!(p.evaluate(&device, &ctx()).unwrap().findings.is_empty());
        // A broken pack refuses the bundle, saying which pack.
        let mut broken = pack;
        broken.modules[0].1 = "package packs.p\nfired contains \"other\" if true".into();
        with_pack.packs = vec![broken];
        let err = TenantPolicy::compile(&with_pack, "decision").unwrap_err();
        assert!(err.to_string().starts_with("pack p@1.0.0: "), "{err}");
    }

    #[test]
    fn evaluates_with_data_and_stamps_the_decision() {
        let mut b = bundle("acme", ABAC);
        b.data = Some(json!({"regions": ["EU"]}));
        let mut p = TenantPolicy::compile(&b, "decision").unwrap();
        let ok = p
            .evaluate(
                &event("acme", "read", json!({"resource": {"region": "EU"}})),
                &ctx(),
            )
            .unwrap();
        assert!(ok.allowed);
        assert_eq!(ok.result, json!({"allow": true, "reasons": []}));
        assert_eq!(ok.rule_path, "data.tenants.acme.decision");
        assert_eq!(ok.bundle_revision, b.effective_revision());
        assert!(ok.bundle_revision.starts_with("sha256:"));
        let no = p
            .evaluate(
                &event("acme", "read", json!({"resource": {"region": "US"}})),
                &ctx(),
            )
            .unwrap();
        assert!(!no.allowed);
        assert_eq!(no.result["reasons"], json!(["no rule allowed this"]));
        assert_eq!(
            no.decision_id, ok.decision_id,
            "same event id, same rule: same decision id"
        );
    }

    #[test]
    fn undefined_rule_value_denies_with_null_result() {
        let src = "package tenants.acme\nimport rego.v1\ndecision := true if input.event.action == \"ok\"";
        let mut p = TenantPolicy::compile(&bundle("acme", src), "decision").unwrap();
        let d = p
            .evaluate(&event("acme", "nope", json!({})), &ctx())
            .unwrap();
        assert!(!d.allowed);
        assert_eq!(d.result, Json::Null);
        assert!(
            p.evaluate(&event("acme", "ok", json!({})), &ctx())
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn a_result_postgres_cannot_store_is_an_evaluation_error() {
        let src =
            "package tenants.acme\nimport rego.v1\ndecision := {\"reasons\": [input.raw.note]}";
        let mut p = TenantPolicy::compile(&bundle("acme", src), "decision").unwrap();
        let err = p
            .evaluate(&event("acme", "x", json!({"note": "a\u{0}b"})), &ctx())
            .unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }

    #[test]
    fn context_is_visible_to_policies() {
        let src =
            "package tenants.acme\nimport rego.v1\ndecision := input.context.protection_level";
        let mut p = TenantPolicy::compile(&bundle("acme", src), "decision").unwrap();
        let d = p.evaluate(&event("acme", "x", json!({})), &ctx()).unwrap();
        assert_eq!(d.result, json!("permissive"));
    }

    #[test]
    fn rejects_packages_outside_the_tenant_namespace() {
        for pkg in ["tenants.globex", "tenants", "tenants.acmex", "system"] {
            let src = format!("package {pkg}\ndecision := true");
            let err = TenantPolicy::compile(&bundle("acme", &src), "decision").unwrap_err();
            assert!(
                matches!(err, PolicyError::WrongPackage { .. }),
                "{pkg}: {err}"
            );
        }
        let sub = "package tenants.acme.sub\nimport rego.v1\nx := 1";
        let main = "package tenants.acme\nimport rego.v1\ndecision := data.tenants.acme.sub.x == 1";
        let mut b = bundle("acme", main);
        b.modules.push(("sub.rego".into(), sub.into()));
        let mut p = TenantPolicy::compile(&b, "decision").unwrap();
        assert!(
            p.evaluate(&event("acme", "x", json!({})), &ctx())
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn broken_rego_and_bad_config_are_clear_errors() {
        let err = TenantPolicy::compile(
            &bundle("acme", "package tenants.acme\ndecision := {"),
            "decision",
        )
        .unwrap_err();
        assert!(
            matches!(&err, PolicyError::Rego { file, .. } if file == "policy.rego"),
            "{err}"
        );
        let err = TenantPolicy::compile(&bundle("acme", ABAC), "missing_rule").unwrap_err();
        assert!(matches!(err, PolicyError::RuleUnusable { .. }), "{err}");
        let err = TenantPolicy::compile(&bundle("acme", ABAC), "a/../b").unwrap_err();
        assert_eq!(err, PolicyError::BadRulePath("a/../b".into()));
        let mut b = bundle("acme", ABAC);
        b.data = Some(json!([1]));
        assert_eq!(
            TenantPolicy::compile(&b, "decision").unwrap_err(),
            PolicyError::DataNotObject
        );
        let mut b = bundle("acme", ABAC);
        b.modules.clear();
        assert!(matches!(
            TenantPolicy::compile(&b, "decision"),
            Err(PolicyError::NoModules(_))
        ));
    }

    #[test]
    fn the_vm_evaluates_unless_it_disagrees_with_the_interpreter() {
        let mut b = bundle("acme", ABAC);
        b.data = Some(json!({"regions": ["EU"]}));
        let p = TenantPolicy::compile(&b, "decision").unwrap();
        assert_eq!(p.evaluator_status().evaluator, Evaluator::Vm);
        // regorus 0.14's VM collects an undefined rule into a comprehension as "<undefined>";
        // the load probe catches the disagreement and the interpreter answers instead.
        let src = "package tenants.acme\nimport rego.v1\ndecision := [x | x := missing]\nmissing if input.nope";
        let mut p = TenantPolicy::compile(&bundle("acme", src), "decision").unwrap();
        assert_eq!(p.evaluator_status().evaluator, Evaluator::Interpreter);
        let why = p.fallback_reason().expect("the VM was set aside");
        assert!(why.contains("<undefined>"), "{why}");
        let d = p.evaluate(&event("acme", "x", json!({})), &ctx()).unwrap();
        assert_eq!(d.result, json!([]));
    }

    #[test]
    fn builtin_errors_make_expressions_undefined_on_every_evaluator() {
        let src = "package tenants.acme\nimport rego.v1\ndefault decision := \"nan\"\ndecision := to_number(input.raw.n)";
        for evaluator in [Evaluator::Interpreter, Evaluator::Vm] {
            let opts = CompileOptions {
                evaluator,
                ..Default::default()
            };
            let mut p =
                TenantPolicy::compile_with(&bundle("acme", src), "decision", &opts).unwrap();
            assert_eq!(p.evaluator_status().evaluator, evaluator);
            let bad = p
                .evaluate(&event("acme", "x", json!({"n": "abc"})), &ctx())
                .unwrap();
            assert_eq!(bad.result, json!("nan"), "{evaluator}");
            let ok = p
                .evaluate(&event("acme", "x", json!({"n": "42"})), &ctx())
                .unwrap();
            assert_eq!(ok.result, json!(42), "{evaluator}");
        }
    }

    #[test]
    fn revision_prefers_metadata() {
        let mut b = bundle("acme", ABAC);
        b.revision = Some("v42".into());
        assert_eq!(
            TenantPolicy::compile(&b, "decision").unwrap().revision(),
            "v42"
        );
    }
}
