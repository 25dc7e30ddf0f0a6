//! One agent's session actor.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::fut::wrap_future;
use actix::{Actor, ActorFutureExt, AtomicResponse, Context, Handler, Message, Supervised};
use portcullis_engine::distribution::{AgentKey, AgentStatus, Hello, SegmentId};
use tracing::{debug, info};

use super::store::{AgentStore, SessionError};
use crate::entity::{Entity, Lease};

/// A message from the agent, as read off its topic.
#[derive(Debug, Clone)]
pub enum FromAgent {
    Hello(Hello),
    /// `replayed`: the broker's retained copy, delivered again on (re)subscribing; it says
    /// the agent's last state, not that the agent was seen now.
    Status {
        status: AgentStatus,
        replayed: bool,
    },
    /// Unreadable (bad JSON, unknown protocol): answered with why.
    Refused(String),
}

impl Message for FromAgent {
    type Result = Result<(), SessionError>;
}

/// The agent's segments may have changed (a segmentation rule, or its enrollment): tell it.
/// Handled in turn with its own messages, so an answer never overtakes an earlier one.
#[derive(Debug, Clone, Copy)]
pub struct SegmentsChanged;

impl Message for SegmentsChanged {
    type Result = Result<(), SessionError>;
}

/// What the session knows of its agent since activation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    pub groups: Vec<String>,
    pub online: bool,
    pub applied: BTreeMap<SegmentId, u64>,
}

pub struct AgentSession<S: AgentStore> {
    key: AgentKey,
    store: Arc<S>,
    state: SessionState,
    lease: Lease,
}

impl<S: AgentStore> AgentSession<S> {
    pub fn state(&self) -> &SessionState {
        &self.state
    }
}

impl<S: AgentStore> Entity for AgentSession<S> {
    type Key = AgentKey;
    type Services = S;
    type Error = SessionError;
    const KIND: &'static str = "agent_session";

    /// Nothing to load: every message carries what the agent says, and the record is written
    /// through to Postgres.
    async fn activate(key: AgentKey, store: Arc<S>, lease: Lease) -> Result<Self, SessionError> {
        Ok(Self {
            key,
            store,
            state: SessionState::default(),
            lease,
        })
    }
}

impl<S: AgentStore> Actor for AgentSession<S> {
    type Context = Context<Self>;
}

impl<S: AgentStore> Supervised for AgentSession<S> {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.lease.restarting();
        self.state = SessionState::default();
    }
}

impl<S: AgentStore> Handler<FromAgent> for AgentSession<S> {
    type Result = AtomicResponse<Self, Result<(), SessionError>>;

    fn handle(&mut self, msg: FromAgent, _ctx: &mut Context<Self>) -> Self::Result {
        let (store, key) = (self.store.clone(), self.key.clone());
        let work = async move {
            match msg.clone() {
                FromAgent::Hello(hello) => {
                    let sent = store.hello(key.clone(), hello).await?;
                    info!(agent = %key, versions = sent, "agent said hello; answered with its segments");
                }
                FromAgent::Status { status, replayed } => {
                    store.status(key.clone(), status.clone(), replayed).await?;
                    debug!(agent = %key, online = status.online, "agent status");
                }
                FromAgent::Refused(why) => {
                    info!(agent = %key, reason = %why, "agent message refused");
                    store.refuse(key, why).await?;
                }
            }
            Ok::<_, SessionError>(msg)
        };
        AtomicResponse::new(Box::pin(wrap_future(work).map(
            |done: Result<FromAgent, SessionError>, act: &mut Self, _| {
                match done? {
                    FromAgent::Hello(h) => {
                        act.state.groups = h.groups;
                        act.state.online = true;
                        act.state.applied = h.applied;
                    }
                    FromAgent::Status { status: s, .. } => {
                        act.state.online = s.online;
                        if s.online || !s.applied.is_empty() {
                            act.state.applied = s.applied;
                        }
                    }
                    FromAgent::Refused(_) => {}
                }
                Ok(())
            },
        )))
    }
}

impl<S: AgentStore> Handler<SegmentsChanged> for AgentSession<S> {
    type Result = AtomicResponse<Self, Result<(), SessionError>>;

    fn handle(&mut self, _: SegmentsChanged, _ctx: &mut Context<Self>) -> Self::Result {
        let (store, key) = (self.store.clone(), self.key.clone());
        AtomicResponse::new(Box::pin(wrap_future(async move {
            let sent = store.reconfigure(key.clone()).await?;
            info!(agent = %key, versions = sent, "agent's segments changed; told it");
            Ok(())
        })))
    }
}
