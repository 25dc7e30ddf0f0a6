//! Publishes pending remediation actions on the commands topic.

use std::time::Duration;

use chrono::Utc;
use portcullis_engine::compliance::RemediationCommand;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use super::{move_violations, RemediationRow};
use crate::compliance::ComplianceConfig;
use crate::config::KafkaConfig;
use crate::sources::kafka::client_config;

/// Actions published per round.
const SEND_BATCH: i64 = 200;

pub async fn run_sender(
    kafka: KafkaConfig,
    config: ComplianceConfig,
    pool: PgPool,
    cancel: CancellationToken,
) -> Result<(), KafkaError> {
    let producer: FutureProducer = client_config(&kafka)
        .set("enable.idempotence", "true")
        .create()?;
    let window = config.window().expect("checked at start");
    let mut tick = tokio::time::interval(Duration::from_millis(config.send_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(topic = %config.commands_topic, dry_run = config.dry_run, "remediation sender started");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return Ok(()),
        }
        let in_window = window.is_open(Utc::now());
        match send_pending(&pool, &producer, &config, in_window).await {
            Ok(0) => {}
            Ok(n) => info!(sent = n, "remediation commands sent"),
            Err(e) => warn!(error = %e, "remediation: cannot send pending actions; trying again"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("cannot publish: {0}")]
    Kafka(#[from] KafkaError),
}

/// Takes commands sent more than `timeout_secs` ago and never answered as failed: the
/// executor lost them or is gone. A real one's violation goes back from `remediating` to
/// `open`, so it is worked again and can be asked for anew.
async fn expire_unanswered(pool: &PgPool, timeout_secs: u64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let expired: Vec<(Uuid, i32, Option<bool>)> = sqlx::query_as(
        "UPDATE remediation_actions SET status = 'failed', finished_at = now(),
                detail = 'no result within ' || $1 || ' s of the command'
         WHERE status = 'sent' AND sent_at < now() - make_interval(secs => $1)
         RETURNING violation_id, open_period, dry_run",
    )
    .bind(timeout_secs as f64)
    .fetch_all(&mut *tx)
    .await?;
    // A dry run never moved its violation: one being remediated is a person's doing.
    let real: Vec<(Uuid, i32)> = expired
        .iter()
        .filter(|e| e.2 == Some(false))
        .map(|e| (e.0, e.1))
        .collect();
    if !real.is_empty() {
        move_violations(
            &mut tx,
            &real,
            "open",
            &["remediating"],
            "a remediation command had no result from an executor",
        )
        .await?;
    }
    tx.commit().await?;
    if !expired.is_empty() {
        warn!(
            actions = expired.len(),
            "remediation commands without a result taken as failed"
        );
    }
    Ok(())
}

/// Publishes pending actions (scheduled ones only in the window), then marks them sent, and an
/// open violation they act on for real `remediating`. Locked rows are another engine's.
pub async fn send_pending(
    pool: &PgPool,
    producer: &FutureProducer,
    config: &ComplianceConfig,
    in_window: bool,
) -> Result<usize, SendError> {
    // An action whose violation is no longer active in the period it was asked for (resolved
    // or suppressed by someone meanwhile, or re-opened since) goes nowhere.
    sqlx::query(
        "UPDATE remediation_actions a SET status = 'cancelled', finished_at = now(),
                detail = 'the violation was ' || v.status || ' before the command went out'
         FROM compliance_violations v
         WHERE a.status = 'pending' AND v.violation_id = a.violation_id
           AND (v.status NOT IN ('open', 'acknowledged', 'remediating')
                OR v.times_reopened <> a.open_period)",
    )
    .execute(pool)
    .await?;
    expire_unanswered(pool, config.result_timeout_secs).await?;
    let mut tx = pool.begin().await?;
    let rows: Vec<RemediationRow> = sqlx::query_as(
        "SELECT * FROM remediation_actions
         WHERE status = 'pending' AND (strategy = 'automatic' OR $1)
         ORDER BY requested_at LIMIT $2
         FOR UPDATE SKIP LOCKED",
    )
    .bind(in_window)
    .bind(SEND_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut sends = Vec::with_capacity(rows.len());
    for row in &rows {
        let command = RemediationCommand {
            remediation_id: row.remediation_id,
            tenant_id: row.tenant_id.clone(),
            violation_id: row.violation_id,
            pack: row.pack.clone(),
            control_id: row.control_id.clone(),
            action: row.action.clone(),
            resource_type: row.resource_type.clone(),
            resource_id: row.resource_id.clone(),
            account: row.account.clone(),
            region: row.region.clone(),
            dry_run: config.dry_run,
            requested_at: row.requested_at,
        };
        sends.push((
            row.tenant_id.clone(),
            serde_json::to_vec(&command).unwrap_or_default(),
        ));
    }
    // All in flight at once; keyed by tenant, so one tenant's commands stay in order on one
    // partition.
    let delivered = futures::future::join_all(sends.iter().map(|(tenant, payload)| {
        producer.send(
            FutureRecord::to(&config.commands_topic)
                .key(tenant)
                .payload(payload),
            Duration::from_secs(30),
        )
    }))
    .await;
    for d in delivered {
        d.map_err(|(e, _)| e)?;
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.remediation_id).collect();
    sqlx::query(
        "UPDATE remediation_actions SET status = 'sent', sent_at = now(), dry_run = $2,
                attempts = attempts + 1
         WHERE remediation_id = ANY($1)",
    )
    .bind(&ids)
    .bind(config.dry_run)
    .execute(&mut *tx)
    .await?;
    if !config.dry_run {
        let violations: Vec<(Uuid, i32)> = rows
            .iter()
            .map(|r| (r.violation_id, r.open_period))
            .collect();
        move_violations(
            &mut tx,
            &violations,
            "remediating",
            &["open", "acknowledged"],
            "a remediation command was sent",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}
