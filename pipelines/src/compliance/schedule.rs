//! Scans on a schedule: every `compliance.scan_interval_secs`, each active tenant's frameworks
//! are scanned over the interval just past. Engines share the work: under an advisory lock per
//! (tenant, framework), one scanned by the schedule within the last nine tenths of an interval
//! is not scanned again.

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
                // One engine at a time decides and scans a (tenant, framework); the lock is held
                // by this connection.
                let Ok(mut conn) = pool.acquire().await else {
                    continue;
                };
                let key = format!("compliance-scan:{tenant}:{framework}");
                let locked: Result<bool, sqlx::Error> =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
                        .bind(&key)
                        .fetch_one(&mut *conn)
                        .await;
                if !matches!(locked, Ok(true)) {
                    continue;
                }
                let recent: Result<bool, sqlx::Error> = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM compliance_scans
                     WHERE tenant_id = $1 AND framework = $2 AND requested_by = $3
                       AND scanned_at > now() - $4 * interval '1 second' * 0.9)",
                )
                .bind(tenant.as_str())
                .bind(&framework)
                .bind(SCHEDULE)
                .bind(every.as_secs_f64())
                .fetch_one(&mut *conn)
                .await;
                if matches!(recent, Ok(false)) {
                    let to = Utc::now();
                    let scanned = run_scan(
                        &pool,
                        &tenant,
                        &packs,
                        &framework,
                        (to - period, to),
                        SCHEDULE,
                    )
                    .await;
                    match scanned {
                        Ok(scan) => info!(%tenant, %framework, pass_rate = ?scan.pass_rate,
                                          score = ?scan.score, "scheduled compliance scan"),
                        Err(e) => warn!(%tenant, %framework, error = %e,
                                        "scheduled compliance scan failed"),
                    }
                }
                let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                    .bind(&key)
                    .execute(&mut *conn)
                    .await;
            }
        }
    }
}
