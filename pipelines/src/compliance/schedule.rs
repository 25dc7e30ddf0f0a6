//! Scans on a schedule: every `compliance.scan_interval_secs`, each active tenant's frameworks
//! are scanned over the interval just past. Engines share the work: a (tenant, framework)
//! scanned by the schedule within the last nine tenths of an interval is not scanned again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use portcullis_actors::PolicyStore;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{frameworks_of, run_scan};

/// Who scheduled scans are requested by.
pub const SCHEDULE: &str = "schedule";

pub async fn run_scheduled_scans(
    pool: PgPool,
    store: Arc<PolicyStore>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let period = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::days(1));
        for (tenant, _) in store.statuses() {
            let Some(serving) = store.serving(&tenant) else {
                continue;
            };
            let packs: Vec<_> = serving
                .policy()
                .packs()
                .iter()
                .map(|p| p.manifest().as_ref().clone())
                .collect();
            for (framework, _) in frameworks_of(&packs) {
                let recent: Result<bool, sqlx::Error> = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM compliance_scans
                     WHERE tenant_id = $1 AND framework = $2 AND requested_by = $3
                       AND scanned_at > now() - $4 * interval '1 second' * 0.9)",
                )
                .bind(tenant.as_str())
                .bind(&framework)
                .bind(SCHEDULE)
                .bind(every.as_secs_f64())
                .fetch_one(&pool)
                .await;
                if !matches!(recent, Ok(false)) {
                    continue;
                }
                let to = Utc::now();
                match run_scan(
                    &pool,
                    &tenant,
                    &packs,
                    &framework,
                    (to - period, to),
                    SCHEDULE,
                )
                .await
                {
                    Ok(scan) => info!(%tenant, %framework, pass_rate = ?scan.pass_rate,
                                      score = ?scan.score, "scheduled compliance scan"),
                    Err(e) => {
                        warn!(%tenant, %framework, error = %e, "scheduled compliance scan failed")
                    }
                }
            }
        }
    }
}
