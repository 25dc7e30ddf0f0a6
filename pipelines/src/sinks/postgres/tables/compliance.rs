//! `compliance_findings` and `compliance_violations`: what the tenants' packs found on the
//! batch's CloudTrail events, and the violations those findings open, join or re-open.
//!
//! One statement: findings go in once per (decision, pack, control), and only the ones newly
//! stored count toward their violation, so a redelivered batch changes nothing. A violation
//! opened (or re-opened) whose control remediates by itself also gets its remediation action,
//! sent later from that row (an outbox, in the same transaction as the finding). A violation's
//! id is derived from its key, so engines writing the same one at once meet on its row.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use portcullis_engine::ids::violation_id;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use super::Table;
use crate::path::RowSet;

pub(in crate::sinks::postgres) struct Findings;

/// Whether a violation in the state `cv` is opened again by findings `EXCLUDED` bring: it
/// was resolved before they happened, or its suppression has run out.
const REOPENS: &str = "((cv.status = 'resolved' AND EXCLUDED.last_seen > cv.resolved_at)
     OR (cv.status = 'suppressed' AND cv.suppressed_until <= now()))";

impl Table for Findings {
    fn name(&self) -> &'static str {
        "compliance_findings"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter()
            .flat_map(|s| &s.decisions)
            .any(|d| !d.findings.is_empty())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let mut rows = Columns::default();
        for set in sets {
            // Decisions follow their events one for one.
            for (event, decision) in set.events.iter().zip(&set.decisions) {
                for f in &decision.findings {
                    let control = f.control();
                    let tenant = decision.tenant_id.as_str();
                    rows.tenant.push(tenant.to_owned());
                    rows.decision.push(decision.decision_id);
                    rows.pack.push(f.pack().to_owned());
                    rows.control.push(control.id.clone());
                    rows.version.push(f.pack_version().to_owned());
                    rows.event.push(decision.event_id.clone());
                    rows.time.push(decision.event_time);
                    rows.severity.push(control.severity.as_str().to_owned());
                    rows.resource_type.push(f.resource_type.clone());
                    rows.resource_id.push(f.resource_id.clone());
                    rows.principal.push(event.principal.clone());
                    rows.action.push(event.action.clone());
                    rows.succeeded.push(f.succeeded);
                    rows.violates.push(f.violates());
                    rows.violation.push(violation_id(
                        tenant,
                        f.pack(),
                        &control.id,
                        &f.resource_type,
                        &f.resource_id,
                    ));
                    rows.title.push(control.title.clone());
                    let remediation = &control.remediation;
                    rows.strategy.push(remediation.strategy.as_str().to_owned());
                    rows.remedy.push(remediation.action.clone());
                    rows.account.push(event.account.clone());
                    rows.region.push(
                        event
                            .raw
                            .get("awsRegion")
                            .and_then(|r| r.as_str())
                            .map(str::to_owned),
                    );
                }
            }
        }
        Box::pin(async move {
            // Only the constant REOPENS is formatted in.
            let stored: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "WITH f AS (
                     -- The same record twice in one write (a log file's duplicate, a message
                     -- redelivered within a flush) is one finding.
                     SELECT DISTINCT ON (t, d, p, c) * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[],
                                          $5::text[], $6::text[], $7::timestamptz[], $8::text[],
                                          $9::text[], $10::text[], $11::text[], $12::text[],
                                          $13::bool[], $14::bool[], $15::uuid[], $16::text[],
                                          $17::text[], $18::text[], $19::text[], $20::text[])
                         AS x(t, d, p, c, v, e, et, sev, rt, ri, pr, a, ok, vi, vid, title,
                              strategy, action, account, region)
                     ORDER BY t, d, p, c
                 ), stored AS (
                     INSERT INTO compliance_findings
                         (tenant_id, decision_id, pack, control_id, pack_version, event_id,
                          event_time, severity, resource_type, resource_id, principal, action,
                          succeeded, violates, violation_id)
                     SELECT t, d, p, c, v, e, et, sev, rt, ri, pr, a, ok, vi,
                            CASE WHEN vi THEN vid END
                     FROM f
                     ON CONFLICT DO NOTHING
                     RETURNING tenant_id, decision_id, pack, control_id
                 ), counted AS (
                     SELECT vid, min(t) t, min(p) p, min(c) c, min(rt) rt, min(ri) ri,
                            (array_agg(v ORDER BY et DESC))[1] v,
                            (array_agg(title ORDER BY et DESC))[1] title,
                            (array_agg(sev ORDER BY et DESC))[1] sev,
                            (array_agg(strategy ORDER BY et DESC))[1] strategy,
                            (array_agg(action ORDER BY et DESC))[1] action,
                            (array_agg(account ORDER BY et DESC))[1] account,
                            (array_agg(region ORDER BY et DESC))[1] region,
                            min(et) first_seen, max(et) last_seen, count(*) n
                     FROM f JOIN stored s
                       ON (s.tenant_id, s.decision_id, s.pack, s.control_id) = (f.t, f.d, f.p, f.c)
                     WHERE f.vi
                     GROUP BY vid
                 ), violations AS (
                     INSERT INTO compliance_violations AS cv
                         (violation_id, tenant_id, pack, control_id, resource_type, resource_id,
                          pack_version, title, severity, first_seen, last_seen, occurrences)
                     SELECT vid, t, p, c, rt, ri, v, title, sev, first_seen, last_seen, n
                     FROM counted ORDER BY vid
                     ON CONFLICT (violation_id) DO UPDATE SET
                         first_seen = LEAST(cv.first_seen, EXCLUDED.first_seen),
                         last_seen = GREATEST(cv.last_seen, EXCLUDED.last_seen),
                         occurrences = cv.occurrences + EXCLUDED.occurrences,
                         pack_version = EXCLUDED.pack_version,
                         title = EXCLUDED.title,
                         severity = EXCLUDED.severity,
                         status = CASE WHEN {REOPENS} THEN 'open' ELSE cv.status END,
                         times_reopened = cv.times_reopened + CASE WHEN {REOPENS} THEN 1 ELSE 0 END,
                         opened_at = CASE WHEN {REOPENS} THEN now() ELSE cv.opened_at END,
                         resolved_at = CASE WHEN {REOPENS} THEN NULL ELSE cv.resolved_at END,
                         suppressed_until =
                             CASE WHEN {REOPENS} THEN NULL ELSE cv.suppressed_until END,
                         reason = CASE WHEN {REOPENS} THEN 'the control fired again'
                                  ELSE cv.reason END,
                         changed_by = CASE WHEN {REOPENS} THEN 'portcullis' ELSE cv.changed_by END,
                         updated_at = now()
                     RETURNING violation_id, status, opened_at, times_reopened
                 ), history AS (
                     INSERT INTO compliance_violation_history (violation_id, status, reason, changed_by)
                     SELECT violation_id, 'open',
                            CASE WHEN times_reopened = 0 THEN 'opened by a finding'
                                 ELSE 'the control fired again' END,
                            'portcullis'
                     FROM violations
                     WHERE status = 'open' AND opened_at = now()
                 ), remediations AS (
                     -- The outbox: a command for each violation opened now whose control
                     -- remediates by itself, once per open period.
                     INSERT INTO remediation_actions
                         (violation_id, open_period, tenant_id, pack, control_id, resource_type,
                          resource_id, account, region, strategy, action)
                     SELECT v.violation_id, v.times_reopened, c.t, c.p, c.c, c.rt, c.ri,
                            c.account, c.region, c.strategy, c.action
                     FROM violations v JOIN counted c ON c.vid = v.violation_id
                     WHERE v.status = 'open' AND v.opened_at = now()
                       AND c.strategy IN ('automatic', 'scheduled') AND c.action IS NOT NULL
                     ON CONFLICT (violation_id, open_period, request) DO NOTHING
                 )
                 SELECT count(*) FROM stored"
            )))
            .bind(&rows.tenant)
            .bind(&rows.decision)
            .bind(&rows.pack)
            .bind(&rows.control)
            .bind(&rows.version)
            .bind(&rows.event)
            .bind(&rows.time)
            .bind(&rows.severity)
            .bind(&rows.resource_type)
            .bind(&rows.resource_id)
            .bind(&rows.principal)
            .bind(&rows.action)
            .bind(&rows.succeeded)
            .bind(&rows.violates)
            .bind(&rows.violation)
            .bind(&rows.title)
            .bind(&rows.strategy)
            .bind(&rows.remedy)
            .bind(&rows.account)
            .bind(&rows.region)
            .fetch_one(&mut *conn)
            .await?;
            Ok(u64::try_from(stored).unwrap_or(0))
        })
    }
}

#[derive(Default)]
struct Columns {
    tenant: Vec<String>,
    decision: Vec<Uuid>,
    pack: Vec<String>,
    control: Vec<String>,
    version: Vec<String>,
    event: Vec<String>,
    time: Vec<DateTime<Utc>>,
    severity: Vec<String>,
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    principal: Vec<String>,
    action: Vec<String>,
    succeeded: Vec<bool>,
    violates: Vec<bool>,
    violation: Vec<Uuid>,
    title: Vec<String>,
    strategy: Vec<String>,
    remedy: Vec<Option<String>>,
    account: Vec<String>,
    region: Vec<Option<String>>,
}
