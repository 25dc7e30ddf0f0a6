//! `[compliance]`: remediation commands and results over Kafka (docs/compliance.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Send remediation commands and read their results (on `kafka.brokers`, when
    /// `kafka.enabled`). Off: actions are still recorded, and wait.
    pub remediation: bool,
    /// Commands ask executors for a dry run: they report what they would change and change
    /// nothing. Turn off once an executor's dry runs are trusted.
    pub dry_run: bool,
    /// Where commands are published.
    pub commands_topic: String,
    /// Where executors publish results, read by the consumer group `{kafka.group_id}.remediation`.
    pub results_topic: String,
    /// How often pending actions are looked for.
    pub send_interval_ms: u64,
    /// A command sent this long ago without a result is taken as failed ("no result"), so its
    /// violation is worked again and a new command can be asked for.
    pub result_timeout_secs: u64,
    /// Daily maintenance window for `scheduled` remediation, in UTC: its start (`HH:MM`) and
    /// length.
    pub maintenance_start_utc: String,
    pub maintenance_hours: u32,
    /// Every tenant's frameworks are scanned this often (over the interval just past); 0: no
    /// scheduled scans (they still run on demand).
    pub scan_interval_secs: u64,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            remediation: true,
            dry_run: true,
            commands_topic: "portcullis-remediation".into(),
            results_topic: "portcullis-remediation-results".into(),
            send_interval_ms: 1000,
            result_timeout_secs: 86_400,
            maintenance_start_utc: "02:00".into(),
            maintenance_hours: 2,
            scan_interval_secs: 86_400,
        }
    }
}

impl ComplianceConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.commands_topic.is_empty() || self.results_topic.is_empty() {
            p.push("compliance.commands_topic and compliance.results_topic must be set".into());
        }
        if self.commands_topic == self.results_topic {
            p.push("compliance.commands_topic and compliance.results_topic must differ".into());
        }
        if self.send_interval_ms < 100 {
            p.push("compliance.send_interval_ms must be at least 100".into());
        }
        if self.result_timeout_secs < 60 {
            p.push("compliance.result_timeout_secs must be at least 60".into());
        }
        if self.window().is_none() {
            p.push(format!(
                "compliance.maintenance_start_utc {:?} must be HH:MM and maintenance_hours 1 to 24",
                self.maintenance_start_utc
            ));
        }
        p
    }

    /// The maintenance window; `None` when misconfigured (refused at start).
    pub fn window(&self) -> Option<portcullis_engine::compliance::MaintenanceWindow> {
        let start = chrono::NaiveTime::parse_from_str(&self.maintenance_start_utc, "%H:%M").ok()?;
        (1..=24).contains(&self.maintenance_hours).then(|| {
            portcullis_engine::compliance::MaintenanceWindow {
                start,
                length: chrono::Duration::hours(i64::from(self.maintenance_hours)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_dry_runs_unless_an_operator_says_otherwise() {
        let c = ComplianceConfig::default();
        assert!(c.dry_run && c.problems().is_empty());
        let bad = ComplianceConfig {
            maintenance_start_utc: "25:00".into(),
            results_topic: c.commands_topic.clone(),
            ..c
        };
        assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
    }
}
