//! Emptying the bench database's event-path rows between phases and runs.

/// Empties events, decisions, dead letters, compliance findings and the receipt logs of the bench database. The
/// receipt tables refuse TRUNCATE (they are evidence); in the bench's own database, whose
/// owner this is, their guard triggers are set aside for the statement.
pub async fn clear_path_rows(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(
        "ALTER TABLE receipts DISABLE TRIGGER USER;
         ALTER TABLE receipt_hashes DISABLE TRIGGER USER;
         ALTER TABLE receipt_checkpoints DISABLE TRIGGER USER;
         TRUNCATE events, decisions, dead_letters, receipts, receipt_hashes, receipt_checkpoints, receipt_logs,
                  compliance_findings, compliance_violations, compliance_violation_history,
                  remediation_actions, resources;
         ALTER TABLE receipts ENABLE TRIGGER USER;
         ALTER TABLE receipt_hashes ENABLE TRIGGER USER;
         ALTER TABLE receipt_checkpoints ENABLE TRIGGER USER;",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
