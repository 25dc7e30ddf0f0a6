use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Supervised};
use portcullis_engine::policy::PolicyContext;
use portcullis_engine::{Event, PolicyError, TenantPolicy};
use tracing::{error, info, warn};

use crate::local_query::answer;
use crate::messages::{Install, Query, QueryReply};
use crate::{Evaluate, Outcome, PolicyLoader};

/// Owns one tenant's compiled policy; judges that tenant's events and answers its queries.
pub struct TenantActor {
    policy: TenantPolicy,
    /// The loader's generation of `policy`.
    generation: u64,
    loader: Arc<PolicyLoader>,
    mailbox: usize,
}

impl TenantActor {
    pub fn new(
        policy: TenantPolicy,
        generation: u64,
        loader: Arc<PolicyLoader>,
        mailbox: usize,
    ) -> Self {
        Self {
            policy,
            generation,
            loader,
            mailbox,
        }
    }

    /// Rebuilds the policy from its source. If the source cannot be taken (broken, or changed
    /// without a new revision), a fresh copy of the serving policy replaces this one, which a
    /// panic may have left in any state.
    fn reload(&mut self) {
        let tenant = self.policy.tenant().clone();
        match self.loader.load(&tenant) {
            Ok((p, generation)) => {
                info!(%tenant, revision = p.revision(), "tenant policy reloaded");
                self.policy = p;
                self.generation = generation;
            }
            Err(e) => match self.loader.serving(&tenant) {
                Some(s) if s.generation >= self.generation => {
                    warn!(%tenant, error = %e, "reload failed; starting again from a copy of the serving policy");
                    self.policy = TenantPolicy::clone(&s.policy);
                    self.generation = s.generation;
                }
                _ => warn!(%tenant, error = %e, "reload failed; keeping the previous policy"),
            },
        }
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Bounded mailbox: senders using `send().await` wait when it is full (backpressure).
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Supervised for TenantActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // The engine may be in any state after a panic: start again from the bundle.
        self.reload();
    }
}

impl Handler<Evaluate> for TenantActor {
    type Result = Vec<(Event, Outcome)>;

    fn handle(&mut self, msg: Evaluate, _ctx: &mut Context<Self>) -> Vec<(Event, Outcome)> {
        let context = PolicyContext::neutral(msg.now);
        let mut out = Vec::with_capacity(msg.events.len());
        for mut event in msg.events {
            // actix does not catch panics in handlers: one would end this actor's task, and its
            // Supervisor with it, so the tenant would stop being judged at all.
            let outcome = catch_unwind(AssertUnwindSafe(|| self.policy.evaluate(&event, &context)));
            match outcome {
                Ok(Ok(decision)) => {
                    // Judged: what is kept of the event (stored, streamed) is masked by the
                    // bundle that judged it. A dead letter keeps the record whole, for replay.
                    self.policy.mask().apply_to_event(&mut event);
                    out.push((event, Ok(decision)))
                }
                Ok(Err(e)) => out.push((event, Err(e.to_string()))),
                Err(_) => {
                    error!(tenant = %self.policy.tenant(), event_id = %event.event_id,
                        "policy evaluation panicked; reloading the tenant policy");
                    out.push((event, Err("policy evaluation panicked".into())));
                    // The engine may be in any state after a panic: start again from the bundle,
                    // and go on with the rest of the batch.
                    self.reload();
                }
            }
        }
        out
    }
}

impl Handler<Query> for TenantActor {
    type Result = Result<QueryReply, PolicyError>;

    fn handle(&mut self, msg: Query, _ctx: &mut Context<Self>) -> Self::Result {
        match catch_unwind(AssertUnwindSafe(|| answer(&mut self.policy, msg))) {
            Ok(reply) => reply.map_err(|failed| failed.error),
            Err(_) => {
                error!(tenant = %self.policy.tenant(), "policy query panicked; reloading the tenant policy");
                self.reload();
                Err(PolicyError::Eval("policy evaluation panicked".into()))
            }
        }
    }
}

impl Handler<Install> for TenantActor {
    type Result = ();

    fn handle(&mut self, msg: Install, _ctx: &mut Context<Self>) {
        if msg.generation < self.generation {
            // A concurrent activation already installed something newer.
            return;
        }
        info!(tenant = %msg.policy.tenant(), revision = msg.policy.revision(), "tenant policy replaced");
        self.policy = msg.policy;
        self.generation = msg.generation;
    }
}
