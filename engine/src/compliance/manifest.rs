//! A pack's `pack.json`: its name, version, the frameworks it maps to, and its controls.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::pack_ref::{valid_name, valid_version};
use super::{Control, PackError, PackRef};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackManifest {
    pub name: String,
    pub version: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub frameworks: Vec<Framework>,
    pub controls: Vec<Control>,
}

/// A framework a pack's controls map to: `cis_aws_3.0` → "CIS AWS Foundations Benchmark v3.0.0".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    pub id: String,
    pub title: String,
}

impl PackManifest {
    /// Reads and checks `pack.json`.
    pub fn parse(bytes: &[u8]) -> Result<Self, PackError> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|e| PackError::Manifest(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), PackError> {
        if !valid_name(&self.name) {
            return Err(PackError::BadName(self.name.clone()));
        }
        if !valid_version(&self.version) {
            return Err(PackError::BadVersion(self.version.clone()));
        }
        if self.controls.is_empty() {
            return Err(PackError::Manifest(
                "a pack declares at least one control".into(),
            ));
        }
        let frameworks: HashSet<&str> = self.frameworks.iter().map(|f| f.id.as_str()).collect();
        let mut seen = HashSet::new();
        for control in &self.controls {
            control.check()?;
            if !seen.insert(control.id.as_str()) {
                return Err(PackError::DuplicateControl(control.id.clone()));
            }
            if let Some(unknown) = control
                .frameworks
                .keys()
                .find(|f| !frameworks.contains(f.as_str()))
            {
                return Err(PackError::UnknownFramework {
                    control: control.id.clone(),
                    framework: unknown.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn pack_ref(&self) -> PackRef {
        PackRef {
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }

    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(controls: serde_json::Value) -> serde_json::Value {
        json!({"name": "p", "version": "1.0.0", "title": "P",
               "frameworks": [{"id": "cis", "title": "CIS"}], "controls": controls})
    }

    fn control(id: &str) -> serde_json::Value {
        json!({"id": id, "title": "t", "severity": "high", "frameworks": {"cis": "4.1"},
               "resource": {"type": "AWS::::Account"}, "rationale": "r",
               "remediation": {"text": "fix"}})
    }

    fn parse(v: serde_json::Value) -> Result<PackManifest, PackError> {
        PackManifest::parse(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn reads_a_pack_and_refuses_what_is_wrong_with_one() {
        let ok = parse(manifest(json!([control("4.1"), control("4.2")]))).unwrap();
        assert_eq!(
            ok.control("4.2").unwrap().remediation.strategy.as_str(),
            "manual"
        );
        assert_eq!(
            parse(manifest(json!([control("4.1"), control("4.1")]))),
            Err(PackError::DuplicateControl("4.1".into()))
        );
        let mut stray = control("4.1");
        stray["frameworks"] = json!({"nist": "AC-2"});
        assert!(matches!(
            parse(manifest(json!([stray]))),
            Err(PackError::UnknownFramework { .. })
        ));
        let mut typo = control("4.1");
        typo["severty"] = json!("high");
        assert!(
            matches!(parse(manifest(json!([typo]))), Err(PackError::Manifest(m)) if m.contains("severty"))
        );
        let mut bad = manifest(json!([control("4.1")]));
        bad["name"] = json!("../etc");
        assert_eq!(parse(bad), Err(PackError::BadName("../etc".into())));
        assert!(matches!(
            parse(manifest(json!([]))),
            Err(PackError::Manifest(_))
        ));
    }
}
