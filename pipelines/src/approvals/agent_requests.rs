//! Approval requests asked by agents' events: an event from an agent that policy answered
//! `require_approval` opens a request, or joins the one already waiting for the same request,
//! in the same transaction as its decision (so a crash neither loses nor doubles it). The
//! verdict the agent is sent names the request; the answer follows on the same topic
//! (`tell_agents`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use portcullis_engine::approval::{ApprovalRequest, Verdict};
use portcullis_engine::decode::valid_agent_id;
use portcullis_engine::event::Source;
use portcullis_engine::evidence::reasons_of;
use serde::Serialize;
use uuid::Uuid;

use portcullis_actors::ProtectionBoard;
use portcullis_engine::TenantId;

use crate::path::{AfterCommit, RowSet};
use crate::telemetry::stats::Stats;

/// Names approval ids made from decision ids: the same decision, redelivered, asks with the
/// same id, so a request answered meanwhile is not opened again.
const APPROVAL_IDS: Uuid = Uuid::from_u128(0x6a1f_0c52_9d3e_4b8a_a7c1_52e0_9f44_d1b3);

/// One agent event's request for approval.
#[derive(Debug, Clone)]
pub struct AgentApproval {
    /// The agent that sent the event, to be told.
    pub agent_id: String,
    pub request: ApprovalRequest,
    /// The id a new request gets.
    pub approval_id: Uuid,
    /// Until when a new request waits.
    pub expires_at: DateTime<Utc>,
    /// The request this one opened or joined, as the batch's write found it (set again by a
    /// retried write); read once the batch is committed.
    pub joined: Arc<Mutex<Option<Joined>>>,
}

impl AgentApproval {
    pub fn joined(&self) -> Option<Joined> {
        self.joined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_joined(&self, joined: Option<Joined>) {
        *self.joined.lock().unwrap_or_else(|e| e.into_inner()) = joined;
    }
}

/// What an agent is told of its request with the verdict: `pending` (possibly past its expiry,
/// until the sweep marks it and the agent is told `expired`), or `approved`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Joined {
    pub id: Uuid,
    /// `pending`, or `approved` when an approval of the same request still holds.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub grant_until: Option<DateTime<Utc>>,
    /// Opened by this write (not found waiting or approved).
    #[serde(skip)]
    pub opened: bool,
}

/// Gives every judged agent event of `sets` that policy answered `require_approval` its
/// request, waiting until `now + pending`. Done once per batch, before the write is tried.
pub fn add_agent_approvals(sets: &mut [RowSet], now: DateTime<Utc>, pending: chrono::Duration) {
    for set in sets {
        set.agent_approvals = set
            .events
            .iter()
            .zip(&set.decisions)
            .filter(|(event, d)| {
                event.source == Source::Mqtt
                    && valid_agent_id(&event.account)
                    && Verdict::of(&d.result) == Verdict::RequireApproval
            })
            .map(|(event, d)| AgentApproval {
                agent_id: event.account.clone(),
                request: ApprovalRequest {
                    tenant: d.tenant_id.to_string(),
                    rule: d.rule_path.clone(),
                    principal: Some(event.principal.clone()),
                    action: Some(event.action.clone()),
                    // The agent is part of what is asked: an approval for one device lets no
                    // other through, whatever user the other claims.
                    resource: format!(
                        "{} on {}",
                        event.resource.as_deref().unwrap_or("the device"),
                        event.account
                    ),
                    reasons: reasons_of(&d.result),
                    source: "agent",
                    decision_id: d.decision_id,
                    policy_revision: d.bundle_revision.clone(),
                    policy_digest: d.policy_digest.to_string(),
                },
                approval_id: Uuid::new_v5(&APPROVAL_IDS, d.decision_id.as_bytes()),
                expires_at: now + pending,
                joined: Arc::default(),
            })
            .collect();
    }
}

/// Counts the requests agents' events opened, once committed: in
/// `portcullis_approvals_total{status="opened"}` and as arrivals in the tenant's `approvals`
/// protection unit, as the decision API does.
pub struct AgentApprovalsOpened {
    pub stats: Arc<Stats>,
    pub protection: Option<Arc<ProtectionBoard>>,
}

impl AfterCommit for AgentApprovalsOpened {
    fn committed(&self, sets: &[RowSet]) {
        let opened = sets
            .iter()
            .flat_map(|s| &s.agent_approvals)
            .filter(|a| a.joined().is_some_and(|j| j.opened));
        for ask in opened {
            let tenant = &ask.request.tenant;
            self.stats
                .metrics
                .approvals
                .with_label_values(&[tenant.as_str(), "opened"])
                .inc();
            if let (Some(board), Ok(tenant)) = (&self.protection, TenantId::parse(tenant)) {
                board.arrive(&tenant, "approvals");
            }
        }
    }
}
