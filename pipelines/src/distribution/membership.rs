//! Segment membership changes reach the agents concerned: a segmentation rule added or
//! removed, or an agent enrolled with other groups, and each agent it touches is answered on
//! its config topic by its session (in turn with its own messages), gaining the segments it
//! now belongs to and dropping the others. An agent offline gets it from its persistent
//! session when it returns.

use std::sync::Arc;

use futures::StreamExt;
use portcullis_actors::SegmentsChanged;
use portcullis_engine::distribution::AgentKey;
use portcullis_engine::TenantId;
use serde::Deserialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::AgentDirectory;
use crate::sinks::postgres::notifications::{heard, Heard};

const CHANNEL: &str = "portcullis_segment_membership";
/// Agents told at once.
const AT_ONCE: usize = 16;

/// A NOTIFY payload (migration 0010).
#[derive(Deserialize)]
struct Change {
    tenant: String,
    group: Option<String>,
    agent: Option<String>,
}

/// Runs until `cancel` fires. Changes made while no engine listens reach an agent at its next
/// hello (its restart, or a gap it sees). After the listening connection is made again, every
/// live agent session is told: a change made while it was down was not heard.
pub async fn run_membership(
    pool: PgPool,
    sessions: Arc<AgentDirectory>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut notices = heard(pool.clone(), CHANNEL, cancel.clone());
    while let Some(change) = notices.recv().await {
        if cancel.is_cancelled() {
            break;
        }
        let agents = match change {
            Heard::Payload(payload) => match concerned(&pool, &payload).await {
                Some((tenant, agents)) => {
                    info!(%tenant, agents = agents.len(), "segment membership changed; telling the agents concerned");
                    agents
                        .into_iter()
                        .map(|agent| AgentKey {
                            tenant: tenant.clone(),
                            agent,
                        })
                        .collect()
                }
                None => continue,
            },
            Heard::Reconnected => {
                let live = sessions.live_keys();
                info!(
                    agents = live.len(),
                    "membership notices may have been missed; telling every live agent session"
                );
                live
            }
        };
        futures::stream::iter(agents)
            .for_each_concurrent(AT_ONCE, |key| {
                let sessions = sessions.clone();
                async move {
                    match sessions.send(&key, SegmentsChanged).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => warn!(agent = %key, error = %e, "agent not told of its new segments; it learns at its next hello"),
                        Err(e) => warn!(agent = %key, error = %e, "agent session unavailable"),
                    }
                }
            })
            .await;
    }
    Ok(())
}

/// The tenant and the agents a change touches: those in the group, or the one enrolled.
async fn concerned(pool: &PgPool, payload: &str) -> Option<(TenantId, Vec<String>)> {
    let change: Change = serde_json::from_str(payload)
        .inspect_err(|e| warn!(%payload, error = %e, "unreadable membership notice"))
        .ok()?;
    let tenant = TenantId::parse(&change.tenant).ok()?;
    let agents = match (change.group, change.agent) {
        (Some(group), _) => {
            sqlx::query_scalar(
                "SELECT agent_id FROM agents WHERE tenant_id = $1 AND $2 = ANY (groups)
                 ORDER BY agent_id",
            )
            .bind(tenant.as_str())
            .bind(group)
            .fetch_all(pool)
            .await
        }
        (None, Some(agent)) => Ok(vec![agent]),
        (None, None) => return None,
    };
    match agents {
        Ok(agents) => Some((tenant, agents)),
        Err(e) => {
            warn!(error = %e, "cannot find the agents a membership change concerns");
            None
        }
    }
}
