//! Reads executors' results from the results topic and finishes their actions.

use std::sync::Arc;

use portcullis_engine::compliance::{RemediationResult, ResultStatus};
use portcullis_engine::{DeadLetter, Origin};
use rdkafka::error::KafkaError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::move_violations;
use crate::compliance::ComplianceConfig;
use crate::config::KafkaConfig;
use crate::sinks::postgres::insert_dead_letters;
use crate::sources::kafka::consume_each;
use crate::telemetry::stats::Stats;

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
