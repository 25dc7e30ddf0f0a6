//! A pack's own tests (`tests.json`): CloudTrail records each control must fire on, as a
//! change or as a failed attempt, and look-alikes it must stay quiet on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{call_succeeded, CompiledPack, PackError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackTestCase {
    pub control: String,
    /// What the record is, for whoever reads a failure: "a read of the same bucket".
    pub name: String,
    pub expect: Expect,
    /// A CloudTrail record; rules see it as `input.raw`.
    pub event: Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The control fires and the call succeeded.
    Change,
    /// The control fires on a call that failed.
    Attempt,
    /// The control does not fire.
    Quiet,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestFailure {
    pub control: String,
    pub name: String,
    pub expected: Expect,
    /// What happened instead: "quiet", "change", "attempt" or an evaluation error.
    pub got: String,
}

impl CompiledPack {
    /// Runs `cases`; the failures, empty when all pass. Refuses a suite that leaves a control
    /// without a case it fires on or without a look-alike it must stay quiet on, or that
    /// names a control the pack does not have.
    pub fn run_tests(&mut self, cases: &[PackTestCase]) -> Result<Vec<TestFailure>, PackError> {
        let mut coverage: BTreeMap<&str, (usize, usize)> = self
            .manifest()
            .controls
            .iter()
            .map(|c| (c.id.as_str(), (0, 0)))
            .collect();
        for case in cases {
            let entry = coverage.get_mut(case.control.as_str()).ok_or_else(|| {
                PackError::Tests(format!(
                    "case {:?} names control {:?}, which the pack does not have",
                    case.name, case.control
                ))
            })?;
            match case.expect {
                Expect::Quiet => entry.1 += 1,
                _ => entry.0 += 1,
            }
        }
        let missing: Vec<String> = coverage
            .iter()
            .filter(|(_, (fires, quiet))| *fires == 0 || *quiet == 0)
            .map(|(id, (fires, _))| match fires {
                0 => format!("{id} (no case it fires on)"),
                _ => format!("{id} (no look-alike it stays quiet on)"),
            })
            .collect();
        if !missing.is_empty() {
            return Err(PackError::Tests(format!(
                "controls without both kinds of case: {}",
                missing.join(", ")
            )));
        }
        let mut failures = Vec::new();
        for case in cases {
            let input = regorus::Value::from(serde_json::json!({"raw": case.event.clone()}));
            let got = match self.findings(input, &case.event) {
                Err(e) => format!("error: {e}"),
                Ok(found) => match found.iter().any(|f| f.control().id == case.control) {
                    false => "quiet".to_owned(),
                    true if call_succeeded(&case.event) => "change".to_owned(),
                    true => "attempt".to_owned(),
                },
            };
            let want = match case.expect {
                Expect::Change => "change",
                Expect::Attempt => "attempt",
                Expect::Quiet => "quiet",
            };
            if got != want {
                failures.push(TestFailure {
                    control: case.control.clone(),
                    name: case.name.clone(),
                    expected: case.expect,
                    got,
                });
            }
        }
        Ok(failures)
    }
}
