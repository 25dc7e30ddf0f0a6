//! What a segment policy must be before it is signed and sent: Rego that compiles, in the
//! segment's own package, with data that is a JSON object. Checked at publishing, so a broken
//! policy is an error for the administrator, never something every agent refuses.

use std::collections::BTreeMap;

use super::segment::SegmentId;
use crate::policy::PolicyError;

/// Most modules in one segment policy.
pub const MAX_SEGMENT_MODULES: usize = 100;

/// Compiles `modules` with `data` as an agent will, and evaluates the segment's package once
/// on an empty input, so errors that only show at evaluation (unknown functions, conflicting
/// rules) are found now.
pub fn check_segment_policy(
    segment: &SegmentId,
    modules: &BTreeMap<String, String>,
    data: &serde_json::Value,
) -> Result<(), PolicyError> {
    if modules.is_empty() {
        return Err(PolicyError::NoModules(format!("segment {segment}")));
    }
    if modules.len() > MAX_SEGMENT_MODULES {
        return Err(PolicyError::Rego {
            file: format!("{} modules", modules.len()),
            message: format!("a segment policy has at most {MAX_SEGMENT_MODULES} modules"),
        });
    }
    if !data.is_object() {
        return Err(PolicyError::DataNotObject);
    }
    let package = segment.rego_package();
    let expected = format!("data.{package}");
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(false);
    for (file, src) in modules {
        let found =
            engine
                .add_policy(file.clone(), src.clone())
                .map_err(|e| PolicyError::Rego {
                    file: file.clone(),
                    message: e.to_string(),
                })?;
        let inside = found == expected
            || found
                .strip_prefix(&expected)
                .is_some_and(|rest| rest.starts_with('.'));
        if !inside {
            return Err(PolicyError::WrongPackage {
                file: file.clone(),
                package: found.trim_start_matches("data.").to_owned(),
                expected: package,
            });
        }
    }
    engine
        .add_data(regorus::Value::from(
            serde_json::json!({"segments": {segment.as_str(): data}}),
        ))
        .map_err(|e| PolicyError::Rego {
            file: "data".into(),
            message: e.to_string(),
        })?;
    engine.set_input(regorus::Value::new_object());
    engine
        .eval_query(expected.clone(), false)
        .map_err(|e| PolicyError::RuleUnusable {
            rule: expected,
            message: e.to_string(),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn modules(src: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("p.rego".to_owned(), src.to_owned())])
    }

    fn hr() -> SegmentId {
        SegmentId::parse("hr").unwrap()
    }

    #[test]
    fn a_segment_policy_in_its_package_passes() {
        let ok = "package segments.hr\ndefault allow := false\nallow if input.action in data.segments.hr.allowed";
        check_segment_policy(&hr(), &modules(ok), &json!({"allowed": ["read"]})).unwrap();
        let below = "package segments.hr.usb\ndeny if input.action == \"usb_mount\"";
        check_segment_policy(&hr(), &modules(below), &json!({})).unwrap();
    }

    #[test]
    fn broken_foreign_or_empty_policies_are_refused_with_the_file() {
        let err = check_segment_policy(
            &hr(),
            &modules("package segments.hr\nallow if {"),
            &json!({}),
        )
        .unwrap_err();
        assert!(
            matches!(&err, PolicyError::Rego { file, .. } if file == "p.rego"),
            "{err}"
        );
        for foreign in [
            "package segments.finance\nx := 1",
            "package tenants.acme\nx := 1",
            "package segments.hrx\nx := 1",
        ] {
            let err = check_segment_policy(&hr(), &modules(foreign), &json!({})).unwrap_err();
            assert!(
                matches!(err, PolicyError::WrongPackage { .. }),
                "{foreign}: {err}"
            );
        }
        assert!(matches!(
            check_segment_policy(&hr(), &BTreeMap::new(), &json!({})),
            Err(PolicyError::NoModules(_))
        ));
        assert_eq!(
            check_segment_policy(&hr(), &modules("package segments.hr\nx := 1"), &json!([1])),
            Err(PolicyError::DataNotObject)
        );
        let unknown_fn = "package segments.hr\nx := no_such_function(1)";
        assert!(matches!(
            check_segment_policy(&hr(), &modules(unknown_fn), &json!({})),
            Err(PolicyError::Rego { .. } | PolicyError::RuleUnusable { .. })
        ));
    }
}
