use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::{Actor, Context, Handler, Supervised};
use portcullis_engine::policy::PolicyContext;
use portcullis_engine::{Event, PolicyError, TenantPolicy};
use tracing::{error, info, warn};

use crate::local_query::answer;
use crate::messages::{Install, Query, QueryReply};
use crate::{Evaluate, Outcome, PolicyLoader};

/// How many of one batch's events a tenant's rules may run into the time limit on before the
/// rest of its events in that batch are dead-lettered unjudged. Tenants share arbiter threads
/// and a batch is stored only once all of it is judged, so this bounds what one tenant's
/// runaway rule costs everyone else to about this many time limits per batch.
pub const LIMIT_STOPS_PER_BATCH: usize = 2;

/// Why an event was not judged, for its dead letter.
fn not_evaluated(stopped: usize) -> String {
    format!(
        "skipped: {stopped} of this tenant's earlier events in the same batch ran into the \
         evaluation time limit, so the rest of its batch was set aside unjudged; fix the \
         policy, then re-drive them with `portcullis dlq replay`"
    )
}

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
        let mut stopped = 0;
        for mut event in msg.events {
            if stopped == LIMIT_STOPS_PER_BATCH {
                out.push((event, Err(not_evaluated(stopped))));
                continue;
            }
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
                Ok(Err(e)) => {
                    if matches!(e, PolicyError::LimitExceeded(_)) {
                        stopped += 1;
                    }
                    out.push((event, Err(e.to_string())))
                }
                Err(_) => {
                    error!(tenant = %self.policy.tenant(), event_id = %event.event_id,
                        "policy evaluation panicked; reloading the tenant policy");
                    out.push((event, Err(PolicyError::Panicked.to_string())));
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
        // `answer` catches a panicking evaluation; this, anything else.
        let reply = match catch_unwind(AssertUnwindSafe(|| answer(&mut self.policy, msg))) {
            Ok(reply) => reply.map_err(|failed| failed.error),
            Err(_) => Err(PolicyError::Panicked),
        };
        if reply.as_ref().is_err_and(|e| *e == PolicyError::Panicked) {
            error!(tenant = %self.policy.tenant(), "policy query panicked; reloading the tenant policy");
            self.reload();
        }
        reply
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
