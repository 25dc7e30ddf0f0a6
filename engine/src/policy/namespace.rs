//! Adding modules to an engine while keeping them in one namespace: a tenant's modules in
//! `tenants.<tenant>`, a segment's in `segments.<segment>` (or packages below), so no policy
//! can define or read rules in another's.

use super::PolicyError;

/// Adds each `(file, source)` to `engine`, refusing a module that does not parse or whose
/// package is neither `package` nor below it.
pub(crate) fn add_modules_within<'a>(
    engine: &mut regorus::Engine,
    modules: impl IntoIterator<Item = (&'a String, &'a String)>,
    package: &str,
) -> Result<(), PolicyError> {
    let expected = format!("data.{package}");
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
                expected: package.to_owned(),
            });
        }
    }
    Ok(())
}
