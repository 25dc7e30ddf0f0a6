//! One tenant's compiled policy: its own regorus engine, nothing shared with other tenants.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::{json, Value as Json};

use super::decision::allowed_by;
use super::input::event_input;
use super::query::KnownRules;
use super::{Bundle, Decision, InputMask, PolicyContext, PolicyError, RulePath};
use crate::decode::fields::reject_nul;
use crate::{ids, Event, TenantId};

/// How long one evaluation may run before it is stopped (guard rail against loops and
/// exploding comprehensions); see [`TenantPolicy::compile_with_timeout`].
pub const DEFAULT_EVAL_TIMEOUT: Duration = Duration::from_millis(100);

/// Cloning is cheap (the compiled modules are shared) and gives an independent evaluator: how
/// several threads answer one tenant's queries at once.
#[derive(Clone)]
pub struct TenantPolicy {
    pub(crate) tenant: TenantId,
    pub(crate) engine: regorus::Engine,
    rule_path: String,
    pub(crate) revision: String,
    digest: String,
    mask: InputMask,
    pub(crate) known_rules: KnownRules,
}

impl std::fmt::Debug for TenantPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPolicy")
            .field("tenant", &self.tenant)
            .field("rule_path", &self.rule_path)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl TenantPolicy {
    /// Compiles `bundle` and checks that `rule` (relative to the tenant package, e.g. `decision`)
    /// can be evaluated. Every module must declare package `tenants.{tenant}` or one below it, so
    /// a tenant can never define, or read, rules in another tenant's namespace.
    pub fn compile(bundle: &Bundle, rule: &str) -> Result<Self, PolicyError> {
        Self::compile_with_timeout(bundle, rule, DEFAULT_EVAL_TIMEOUT)
    }

    /// As [`Self::compile`], with `eval_timeout` as the time limit of every evaluation, the
    /// load-time probe of `rule` included.
    pub fn compile_with_timeout(
        bundle: &Bundle,
        rule: &str,
        eval_timeout: Duration,
    ) -> Result<Self, PolicyError> {
        if bundle.modules.is_empty() {
            return Err(PolicyError::NoModules(bundle.tenant.to_string()));
        }
        let rule = RulePath::from_dotted(rule)?;
        let mask = InputMask::parse(&bundle.mask)?;
        let expected = format!("data.{}", bundle.tenant.rego_package());
        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(timer(eval_timeout));
        for (file, src) in &bundle.modules {
            let package =
                engine
                    .add_policy(file.clone(), src.clone())
                    .map_err(|e| PolicyError::Rego {
                        file: file.clone(),
                        message: e.to_string(),
                    })?;
            let inside = package == expected
                || package
                    .strip_prefix(&expected)
                    .is_some_and(|rest| rest.starts_with('.'));
            if !inside {
                return Err(PolicyError::WrongPackage {
                    file: file.clone(),
                    package: package.trim_start_matches("data.").to_owned(),
                    expected: bundle.tenant.rego_package(),
                });
            }
        }
        if let Some(data) = &bundle.data {
            if !data.is_object() {
                return Err(PolicyError::DataNotObject);
            }
            // Mounted where OPA would mount a bundle's data.json: under the tenant's own path.
            let mounted = json!({"tenants": {bundle.tenant.as_str(): data}});
            engine
                .add_data(regorus::Value::from(mounted))
                .map_err(|e| PolicyError::Rego {
                    file: "data.json".into(),
                    message: e.to_string(),
                })?;
        }
        let mut policy = Self {
            tenant: bundle.tenant.clone(),
            engine,
            rule_path: rule.under(&bundle.tenant.rego_package()),
            revision: bundle.effective_revision(),
            digest: bundle.digest(),
            mask,
            known_rules: KnownRules::default(),
        };
        // Probe once so that a missing rule or a compile-time error is a load error, not a
        // dead letter for every event that follows.
        policy.engine.set_input(regorus::Value::new_object());
        policy
            .engine
            .eval_rule(policy.rule_path.clone())
            .map_err(|e| PolicyError::RuleUnusable {
                rule: policy.rule_path.clone(),
                message: e.to_string(),
            })?;
        Ok(policy)
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

    /// Judges one event. The caller must pass only this tenant's events.
    pub fn evaluate(
        &mut self,
        event: &Event,
        ctx: &PolicyContext,
    ) -> Result<Decision, PolicyError> {
        debug_assert_eq!(event.tenant_id, self.tenant);
        let started = Instant::now();
        let result = self.eval_value(event_input(event, ctx))?;
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
            eval_micros,
        })
    }

    /// Evaluates the tenant rule on `input`; `null` when the rule is undefined.
    fn eval_value(&mut self, input: regorus::Value) -> Result<Json, PolicyError> {
        self.engine.set_input(input);
        let value = self
            .engine
            .eval_rule(self.rule_path.clone())
            .map_err(PolicyError::from_eval)?;
        Ok(to_json(value)?.unwrap_or(Json::Null))
    }
}

/// Checks for elapsed time every few work units: often enough to stop a runaway loop within
/// about a millisecond of the limit, rarely enough to cost nothing measurable.
fn timer(limit: Duration) -> ExecutionTimerConfig {
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
    fn revision_prefers_metadata() {
        let mut b = bundle("acme", ABAC);
        b.revision = Some("v42".into());
        assert_eq!(
            TenantPolicy::compile(&b, "decision").unwrap().revision(),
            "v42"
        );
    }
}
