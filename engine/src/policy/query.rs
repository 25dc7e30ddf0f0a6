//! Decision API queries: any rule or package below the tenant's own, on a caller's input.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::Value as Json;

use super::input::with_context;
use super::{PolicyContext, PolicyError, RulePath, TenantPolicy};

/// Most distinct rule paths remembered as "evaluates with `eval_rule`" per tenant. Paths come
/// from URLs, so the set must not grow without bound.
const MAX_KNOWN_RULES: usize = 1024;

/// The answer to one decision API query.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// Full path evaluated, e.g. `data.tenants.acme.authz.allow`.
    pub path: String,
    /// The value; `None` when undefined (OPA then answers without `result`).
    pub result: Option<Json>,
    pub revision: String,
    /// The bundle's content digest (`sha256:…`).
    pub digest: std::sync::Arc<str>,
    pub eval_micros: u64,
}

/// Paths known to name a rule, so the fast `eval_rule` can be tried first.
#[derive(Clone, Default)]
pub(crate) struct KnownRules(HashSet<String>);

impl TenantPolicy {
    /// Evaluates `path` (relative to `tenants.{tenant}`) with `input`, to which the engine's
    /// `context` is added. A path that names a package returns its whole document, as in OPA.
    pub fn query(
        &mut self,
        path: &RulePath,
        input: Option<&Json>,
        ctx: &PolicyContext,
    ) -> Result<Answer, PolicyError> {
        let full = path.under(&self.tenant.rego_package());
        let started = Instant::now();
        let event_name = input
            .and_then(|i| i.get("raw"))
            .and_then(|r| r.get("eventName"))
            .and_then(Json::as_str);
        let input = with_context(input, ctx);
        if full == self.rule_path() {
            if let Some(dispatch) = &mut self.dispatch {
                let value = dispatch.program_for(event_name).eval(&full, input)?;
                return self.answer(full, value, started);
            }
        }
        if !path.is_package() {
            if let Some(program) = self.program.as_mut().filter(|p| p.has(&full)) {
                let value = program.eval(&full, input)?;
                return self.answer(full, value, started);
            }
        }
        self.engine.set_input(input);
        let value = if path.is_package() {
            self.eval_as_query(&full)?
        } else if self.known_rules.0.contains(&full) {
            self.engine
                .eval_rule(full.clone())
                .map_err(PolicyError::from_eval)?
        } else {
            match self.engine.eval_rule(full.clone()) {
                Ok(v) => {
                    if self.known_rules.0.len() < MAX_KNOWN_RULES {
                        self.known_rules.0.insert(full.clone());
                    }
                    v
                }
                // Stopped: asking again as a query would only run it again.
                Err(e) => match PolicyError::from_eval(e) {
                    e @ (PolicyError::LimitExceeded(_) | PolicyError::ValueTooLarge(_)) => {
                        return Err(e)
                    }
                    // Not a rule: a package below the tenant's, or nothing at all (undefined).
                    _ => self.eval_as_query(&full)?,
                },
            }
        };
        self.answer(full, value, started)
    }

    fn answer(
        &self,
        path: String,
        value: regorus::Value,
        started: Instant,
    ) -> Result<Answer, PolicyError> {
        let eval_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Answer {
            path,
            result: super::tenant_policy::to_json(value)?,
            revision: self.revision.clone(),
            digest: self.digest.clone(),
            eval_micros,
        })
    }

    fn eval_as_query(&mut self, full: &str) -> Result<regorus::Value, PolicyError> {
        let results = self
            .engine
            .eval_query(full.to_owned(), false)
            .map_err(PolicyError::from_eval)?;
        Ok(results
            .result
            .into_iter()
            .next()
            .and_then(|r| r.expressions.into_iter().next())
            .map(|e| e.value)
            .unwrap_or(regorus::Value::Undefined))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::{Bundle, TenantId};

    fn policy(src: &str, data: Option<Json>) -> TenantPolicy {
        policy_limited(src, data, crate::policy::DEFAULT_EVAL_TIMEOUT)
    }

    fn policy_limited(src: &str, data: Option<Json>, limit: Duration) -> TenantPolicy {
        let bundle = Bundle {
            tenant: TenantId::parse("acme").unwrap(),
            modules: vec![("policy.rego".into(), src.into())],
            data,
            revision: Some("r1".into()),
            mask: Vec::new(),
            packs: Vec::new(),
        };
        let options = crate::policy::CompileOptions {
            eval_timeout: limit,
            ..Default::default()
        };
        TenantPolicy::compile_with(&bundle, "decision", &options).unwrap()
    }

    fn ctx() -> PolicyContext {
        PolicyContext::neutral(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap())
    }

    fn path(p: &str) -> RulePath {
        RulePath::from_url(p).unwrap()
    }

    const SRC: &str = r#"
        package tenants.acme
        import rego.v1
        default decision := false
        decision if input.user == "alice"
        authz := {"allow": input.user in data.tenants.acme.admins, "level": input.context.protection_level}
    "#;

    #[test]
    fn a_rule_the_vm_answers_wrongly_is_queried_on_the_interpreter() {
        // regorus 0.14's VM collects an undefined rule into a comprehension as "<undefined>".
        let src = "package tenants.acme\nimport rego.v1\ndecision := true\nodd := [x | x := missing]\nmissing if input.nope";
        let mut p = policy(src, None);
        let program = p.program.as_ref().expect("the tenant rule runs on the VM");
        assert!(!program.has("data.tenants.acme.odd"));
        let a = p.query(&path("odd"), Some(&json!({})), &ctx()).unwrap();
        assert_eq!(a.result, Some(json!([])));
    }

    #[test]
    fn rules_packages_and_undefined_paths_answer_like_opa() {
        let mut p = policy(SRC, Some(json!({"admins": ["alice"]})));
        let a = p
            .query(&path("authz"), Some(&json!({"user": "alice"})), &ctx())
            .unwrap();
        assert_eq!(a.path, "data.tenants.acme.authz");
        assert_eq!(
            a.result,
            Some(json!({"allow": true, "level": "permissive"}))
        );
        assert_eq!(a.revision, "r1");
        // Second call takes the remembered-rule path and agrees.
        let b = p
            .query(&path("authz"), Some(&json!({"user": "bob"})), &ctx())
            .unwrap();
        assert_eq!(b.result.unwrap()["allow"], json!(false));

        let whole = p
            .query(&path(""), Some(&json!({"user": "alice"})), &ctx())
            .unwrap();
        assert_eq!(whole.result.as_ref().unwrap()["decision"], json!(true));
        assert_eq!(whole.result.unwrap()["admins"], json!(["alice"]));

        let none = p.query(&path("no/such/rule"), None, &ctx()).unwrap();
        assert_eq!(none.result, None);
    }

    #[test]
    fn callers_cannot_forge_the_context() {
        let mut p = policy(SRC, Some(json!({"admins": []})));
        let a = p
            .query(
                &path("authz"),
                Some(&json!({"user": "x", "context": {"protection_level": "read_only"}})),
                &ctx(),
            )
            .unwrap();
        assert_eq!(a.result.unwrap()["level"], json!("permissive"));
        let src = "package tenants.acme\nimport rego.v1\ndecision := 1\nlevel := input.context.protection_level";
        let mut p = policy(src, None);
        let a = p.query(&path("level"), None, &ctx()).unwrap();
        assert_eq!(a.result, Some(json!("permissive")), "context without input");
    }

    #[test]
    fn another_tenants_data_and_rules_are_not_there() {
        let src = r#"
            package tenants.acme
            import rego.v1
            decision := 1
            peek := data.tenants.globex.secret
            whole := data
        "#;
        let mut p = policy(src, Some(json!({"mine": 1})));
        assert_eq!(p.query(&path("peek"), None, &ctx()).unwrap().result, None);
        let whole = p
            .query(&path("whole"), None, &ctx())
            .unwrap()
            .result
            .unwrap();
        let tenants: Vec<_> = whole["tenants"].as_object().unwrap().keys().collect();
        assert_eq!(tenants, ["acme"], "{whole}");
    }

    #[test]
    fn runaway_policies_are_stopped_by_the_time_limit() {
        let src = r#"
            package tenants.acme
            import rego.v1
            decision := 1
            explode := count([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j])
            deep := count({x | some a in numbers.range(1, 400); some b in numbers.range(1, 400); some c in numbers.range(1, 400); x := a + b + c})
        "#;
        let mut p = policy_limited(src, None, Duration::from_millis(50));
        for rule in ["explode", "deep"] {
            let started = std::time::Instant::now();
            let err = p.query(&path(rule), None, &ctx()).unwrap_err();
            assert!(
                matches!(err, PolicyError::LimitExceeded(_)),
                "{rule}: {err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{rule} stopped after {:?}",
                started.elapsed()
            );
        }
        // The engine still answers afterwards.
        assert_eq!(
            p.query(&path("decision"), None, &ctx()).unwrap().result,
            Some(json!(1))
        );
    }
}
