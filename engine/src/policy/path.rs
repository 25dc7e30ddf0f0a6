//! Rule paths below a tenant's package, as written in URLs (`authz/allow`) or in config
//! (`authz.allow`). Validated before they reach the Rego engine: identifiers only.

use super::PolicyError;

/// Longest rule path accepted (in bytes): deep enough for any real package layout.
const MAX_PATH_BYTES: usize = 512;

/// A rule path relative to `data.tenants.{tenant}`; empty means the tenant package itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RulePath(Vec<String>);

impl RulePath {
    /// From a URL tail such as `authz/allow` (empty, or a trailing `/`, is the package).
    pub fn from_url(path: &str) -> Result<Self, PolicyError> {
        Self::parse(path.trim_end_matches('/'), '/')
    }

    /// From a dotted path such as `authz.allow`; must name something (not empty).
    pub fn from_dotted(path: &str) -> Result<Self, PolicyError> {
        let p = Self::parse(path, '.')?;
        if p.0.is_empty() {
            return Err(PolicyError::BadRulePath(path.to_owned()));
        }
        Ok(p)
    }

    fn parse(path: &str, sep: char) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadRulePath(path.chars().take(80).collect());
        if path.len() > MAX_PATH_BYTES {
            return Err(bad());
        }
        if path.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let segments: Vec<String> = path.split(sep).map(str::to_owned).collect();
        if segments.iter().all(|s| identifier(s)) {
            Ok(Self(segments))
        } else {
            Err(bad())
        }
    }

    pub fn is_package(&self) -> bool {
        self.0.is_empty()
    }

    /// `data.tenants.{tenant}` followed by this path.
    pub fn under(&self, package: &str) -> String {
        let mut full = format!("data.{package}");
        for s in &self.0 {
            full.push('.');
            full.push_str(s);
        }
        full
    }
}

/// Rego keywords cannot be reference segments: `data.x.with` does not parse.
const KEYWORDS: &[&str] = &[
    "as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null",
    "package", "some", "true", "with",
];

fn identifier(s: &str) -> bool {
    if KEYWORDS.contains(&s) {
        return false;
    }
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_dotted_forms_name_the_same_rule() {
        let a = RulePath::from_url("authz/allow").unwrap();
        assert_eq!(a, RulePath::from_dotted("authz.allow").unwrap());
        assert_eq!(a.under("tenants.acme"), "data.tenants.acme.authz.allow");
        assert!(RulePath::from_url("").unwrap().is_package());
        assert!(RulePath::from_url("allow/").is_ok());
        assert!(RulePath::from_dotted("").is_err());
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in [
            "../globex/allow",
            "a//b",
            "a/b c",
            "a/1x",
            "a/\"b\"",
            "a/b[0]",
            "a.b",
            "x/y%2f",
            "a/with",
            "not",
        ] {
            assert!(RulePath::from_url(p).is_err(), "{p}");
        }
        assert!(RulePath::from_url(&"a/".repeat(300)).is_err());
        assert!(RulePath::from_dotted("a/b").is_err());
    }
}
