//! Remediation over Kafka: the sender publishes pending actions (the outbox the findings writer
//! fills) as commands, and the results consumer finishes them with what executors report.
//!
//! Commands go out at least once: one published but not yet marked sent when the engine stops
//! is published again, under the same `remediation_id`, which executors deduplicate on.
//! Results are applied once: only an action still `sent` takes one, so a redelivered result
//! changes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_engine::compliance::{RemediationCommand, RemediationResult, ResultStatus};
use portcullis_engine::{DeadLetter, Origin};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use super::ComplianceConfig;
use crate::config::KafkaConfig;
use crate::records::TenantScope;
use crate::sinks::postgres::insert_dead_letters;
use crate::sources::kafka::{client_config, consume_each};
use crate::telemetry::stats::Stats;

/// Actions published per round.
const SEND_BATCH: i64 = 200;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RemediationRow {
    pub remediation_id: Uuid,
    pub violation_id: Uuid,
    pub open_period: i32,
    pub tenant_id: String,
    pub pack: String,
    pub control_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub account: String,
    pub region: Option<String>,
    pub strategy: String,
    pub action: String,
    pub status: String,
    pub dry_run: Option<bool>,
    pub requested_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
    pub executor: Option<String>,
}

/// Newest first.
pub async fn remediations(
    pool: &PgPool,
    tenants: &TenantScope,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<RemediationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM remediation_actions
         WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND ($2::text IS NULL OR status = $2)
         ORDER BY requested_at DESC, remediation_id LIMIT $3",
    )
    .bind(tenants.ids())
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await
}

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

/// Moves the violations among `ids` (each with the open period its action was for) whose
/// status is one of `from`, and that have not been re-opened since, to `to`, with a history
/// entry by `portcullis`.
async fn move_violations(
    tx: &mut sqlx::PgConnection,
    ids: &[(Uuid, i32)],
    to: &str,
    from: &[&str],
    reason: &str,
) -> Result<(), sqlx::Error> {
    let (violations, periods): (Vec<Uuid>, Vec<i32>) = ids.iter().copied().unzip();
    sqlx::query(
        "WITH moved AS (
             UPDATE compliance_violations v SET
                 status = $2, reason = $4, changed_by = 'portcullis', updated_at = now(),
                 resolved_at = CASE WHEN $2 = 'resolved' THEN now() END,
                 last_resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE last_resolved_at END
             FROM UNNEST($1::uuid[], $5::int[]) AS x(id, period)
             WHERE v.violation_id = x.id AND v.times_reopened = x.period AND v.status = ANY($3)
             RETURNING v.violation_id
         )
         INSERT INTO compliance_violation_history (violation_id, status, reason, changed_by)
         SELECT violation_id, $2, $4, 'portcullis' FROM moved",
    )
    .bind(&violations)
    .bind(to)
    .bind(from)
    .bind(reason)
    .bind(&periods)
    .execute(tx)
    .await?;
    Ok(())
}

/// What became of one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It finished its action.
    Finished,
    /// Its action had already finished (a redelivery), or was not sent yet: nothing changed.
    Ignored,
    /// No such action: a dead letter.
    Unknown,
}

/// Applies an executor's result: the action takes it if it is still `sent`; a real (not dry)
/// success resolves the violation, a real failure puts it back to `open`.
pub async fn apply_result(pool: &PgPool, r: &RemediationResult) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // `pending` too: a command published in a round whose bookkeeping then failed is answered
    // before the round that sends it again marks it sent. Its dry-run flag is then the one the
    // engine is configured with now, as the command said.
    let finished: Option<(Uuid, Option<bool>, String, i32)> = sqlx::query_as(
        "UPDATE remediation_actions SET status = $2, finished_at = now(), detail = $3,
                executor = $4, dry_run = coalesce(dry_run, $5)
         WHERE remediation_id = $1 AND status IN ('pending', 'sent')
         RETURNING violation_id, dry_run, action, open_period",
    )
    .bind(r.remediation_id)
    .bind(r.status.as_str())
    .bind(r.detail.as_deref())
    .bind(r.executor.as_deref())
    .bind(r.dry_run)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((violation, dry_run, action, period)) = finished else {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM remediation_actions WHERE remediation_id = $1)",
        )
        .bind(r.remediation_id)
        .fetch_one(&mut *tx)
        .await?;
        return Ok(if known {
            Applied::Ignored
        } else {
            Applied::Unknown
        });
    };
    // The command's own dry-run flag decides: an executor that says it acted on a dry run
    // did not change the violation's state either way.
    if dry_run == Some(false) && !r.dry_run {
        let by = r.executor.as_deref().unwrap_or("an executor");
        match r.status {
            ResultStatus::Succeeded => {
                move_violations(
                    &mut tx,
                    &[(violation, period)],
                    "resolved",
                    &["open", "acknowledged", "remediating"],
                    &format!("remediated by {by}: {action}"),
                )
                .await?
            }
            ResultStatus::Failed => {
                move_violations(
                    &mut tx,
                    &[(violation, period)],
                    "open",
                    &["remediating"],
                    &format!(
                        "remediation {action} failed ({by}): {}",
                        r.detail.as_deref().unwrap_or("no detail")
                    ),
                )
                .await?
            }
        }
    }
    tx.commit().await?;
    Ok(Applied::Finished)
}

pub async fn run_results_consumer(
    kafka: KafkaConfig,
    config: ComplianceConfig,
    pool: PgPool,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) -> Result<(), KafkaError> {
    consume_each(
        &kafka,
        "remediation",
        &config.results_topic,
        "remediation results",
        cancel,
        |payload, origin| {
            let (pool, stats) = (pool.clone(), stats.clone());
            async move {
                let outcome = take_result(&pool, &payload, origin).await?;
                stats
                    .metrics
                    .remediation_results
                    .with_label_values(&[outcome])
                    .inc();
                Ok(())
            }
        },
    )
    .await
}

/// Applies one message as a result, or sets it aside as a dead letter: what became of it.
async fn take_result(
    pool: &PgPool,
    payload: &[u8],
    origin: Origin,
) -> Result<&'static str, sqlx::Error> {
    match RemediationResult::parse(payload) {
        Ok(result) => match apply_result(pool, &result).await? {
            Applied::Finished => Ok("finished"),
            Applied::Ignored => Ok("ignored"),
            Applied::Unknown => {
                let why = format!("no remediation action {}", result.remediation_id);
                dead_letter(pool, payload, origin, why).await?;
                Ok("refused")
            }
        },
        Err(e) => {
            dead_letter(pool, payload, origin, e.to_string()).await?;
            Ok("refused")
        }
    }
}

async fn dead_letter(
    pool: &PgPool,
    payload: &[u8],
    origin: Origin,
    why: String,
) -> Result<(), sqlx::Error> {
    let dead = DeadLetter::new(
        origin,
        None,
        payload,
        format!("remediation result refused: {why}"),
    );
    let mut conn = pool.acquire().await?;
    insert_dead_letters(&mut conn, &[&dead]).await?;
    Ok(())
}
