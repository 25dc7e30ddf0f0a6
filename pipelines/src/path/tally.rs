//! What a committed batch did, counted per label so that the metrics are touched once per
//! label and batch rather than once per event.

use std::collections::HashMap;

use portcullis_engine::TenantId;

use super::RowSet;
use crate::telemetry::metrics::Metrics;

#[derive(Debug, Default)]
pub struct Tally {
    events: HashMap<(&'static str, TenantId), u64>,
    decisions: HashMap<(TenantId, &'static str), u64>,
    dead_letters: HashMap<&'static str, u64>,
    /// (tenant, pack, control, severity, call succeeded or failed)
    findings: HashMap<(TenantId, String, String, &'static str, &'static str), u64>,
}

impl Tally {
    pub fn of(sets: &[RowSet]) -> Self {
        let mut t = Tally::default();
        for set in sets {
            for e in &set.events {
                *t.events
                    .entry((e.source.as_str(), e.tenant_id.clone()))
                    .or_default() += 1;
            }
            for d in &set.decisions {
                let outcome = if d.allowed { "allow" } else { "deny" };
                *t.decisions
                    .entry((d.tenant_id.clone(), outcome))
                    .or_default() += 1;
                for f in &d.findings {
                    let control = f.control();
                    let call = if f.succeeded { "succeeded" } else { "failed" };
                    *t.findings
                        .entry((
                            d.tenant_id.clone(),
                            f.pack().to_owned(),
                            control.id.clone(),
                            control.severity.as_str(),
                            call,
                        ))
                        .or_default() += 1;
                }
            }
            for d in &set.dead_letters {
                *t.dead_letters
                    .entry(d.origin.source().as_str())
                    .or_default() += 1;
            }
        }
        t
    }

    pub fn record(&self, m: &Metrics) {
        for ((source, tenant), n) in &self.events {
            m.events
                .with_label_values(&[*source, tenant.as_str()])
                .inc_by(*n);
        }
        for ((tenant, outcome), n) in &self.decisions {
            m.decisions
                .with_label_values(&[tenant.as_str(), *outcome])
                .inc_by(*n);
        }
        for (source, n) in &self.dead_letters {
            m.dead_letters.with_label_values(&[*source]).inc_by(*n);
        }
        for ((tenant, pack, control, severity, call), n) in &self.findings {
            m.compliance_findings
                .with_label_values(&[tenant.as_str(), pack, control, severity, call])
                .inc_by(*n);
        }
    }
}
