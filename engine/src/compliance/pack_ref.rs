//! A tenant's choice of a pack: its name and exact version, from the bundle's
//! `metadata.json` (`"packs": {"cis_aws_monitoring": "1.0.0"}`).

use serde::Serialize;

use super::PackError;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PackRef {
    pub name: String,
    pub version: String,
}

impl PackRef {
    pub fn new(name: &str, version: &str) -> Result<Self, PackError> {
        if !valid_name(name) {
            return Err(PackError::BadName(name.to_owned()));
        }
        if !valid_version(version) {
            return Err(PackError::BadVersion(version.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            version: version.to_owned(),
        })
    }

    /// `packs.<name>`: the package every module of the pack declares.
    pub fn rego_package(&self) -> String {
        format!("packs.{}", self.name)
    }
}

impl std::fmt::Display for PackRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// A Rego identifier, so the name can be the pack's package; also a safe directory name.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `1.0.0`, `2.1.0-rc.1`: a directory name that cannot climb out (`..` never starts with a digit
/// and no '/' is allowed).
pub(crate) fn valid_version(version: &str) -> bool {
    (1..=32).contains(&version.len())
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rego_identifiers_and_versions_stay_in_their_directory() {
        assert!(PackRef::new("cis_aws_monitoring", "1.0.0").is_ok());
        assert!(PackRef::new("cloudtrail_detections", "2.1.0-rc.1").is_ok());
        for bad in ["", "Cis", "1pack", "cis-aws", "a/b", "../x"] {
            assert_eq!(
                PackRef::new(bad, "1.0.0"),
                Err(PackError::BadName(bad.into()))
            );
        }
        for bad in ["", "..", "v1", "1/../../x", "1.0 ", &"1".repeat(33)] {
            assert_eq!(
                PackRef::new("p", bad),
                Err(PackError::BadVersion(bad.to_string()))
            );
        }
        assert_eq!(PackRef::new("p", "1.0.0").unwrap().to_string(), "p@1.0.0");
    }
}
