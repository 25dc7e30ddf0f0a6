//! What a segment policy must be before it is signed and sent: Rego that compiles, in the
//! segment's own package, with data that is a JSON object. Checked at publishing, so a broken
//! policy is an error for the administrator, never something every agent refuses.

use std::collections::BTreeMap;

use super::segment::SegmentId;
use crate::policy::{add_modules_within, PolicyError};

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
    for (file, src) in modules {
        if !module_name_ok(file) {
            return Err(PolicyError::Rego {
                file: file.chars().take(140).collect(),
                message: "module names are 1 to 128 characters of A-Z a-z 0-9 _ - . ending in .rego (agents store them as files)".into(),
            });
        }
        if src.contains('\0') {
            return Err(PolicyError::Rego {
                file: file.clone(),
                message: "the module contains U+0000 (NUL)".into(),
            });
        }
    }
    if !data.is_object() {
        return Err(PolicyError::DataNotObject);
    }
    if holds_nul(data) {
        return Err(PolicyError::Rego {
            file: "data".into(),
            message: "data contains U+0000 (NUL), which Postgres cannot store".into(),
        });
    }
    let package = segment.rego_package();
    let expected = format!("data.{package}");
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(false);
    add_modules_within(&mut engine, modules, &package)?;
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

/// Safe as a file name on any agent: no path separators, no `..` alone, no hidden files.
fn module_name_ok(name: &str) -> bool {
    (6..=128).contains(&name.len())
        && name.ends_with(".rego")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
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
        for name in [
            "../x.rego",
            "a/b.rego",
            ".hidden.rego",
            "p.txt",
            "",
            "p\0.rego",
        ] {
            let m = BTreeMap::from([(name.to_owned(), "package segments.hr\nx := 1".to_owned())]);
            assert!(
                matches!(
                    check_segment_policy(&hr(), &m, &json!({})),
                    Err(PolicyError::Rego { .. })
                ),
                "{name:?}"
            );
        }
        assert!(check_segment_policy(
            &hr(),
            &modules("package segments.hr\nx := 1"),
            &json!({"a": ["\0"]})
        )
        .is_err());
        assert!(check_segment_policy(
            &hr(),
            &modules("package segments.hr\nx := 1"),
            &json!({"\0": 1})
        )
        .is_err());
        let unknown_fn = "package segments.hr\nx := no_such_function(1)";
        assert!(matches!(
            check_segment_policy(&hr(), &modules(unknown_fn), &json!({})),
            Err(PolicyError::Rego { .. } | PolicyError::RuleUnusable { .. })
        ));
    }
}
