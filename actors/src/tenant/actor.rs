//! One tenant's actor: judges its events, in order, with its serving policy from the store.

use portcullis_engine::signals::trust_after;
use std::sync::Arc;

use actix::{Actor, Context, Handler, Supervised};
use portcullis_engine::policy::PolicyContext;
use portcullis_engine::{Event, PolicyError, TenantId};

use super::{Judge, Verdict};
use crate::entity::{catch_panic, Entity, EntityDirectory, Lease};
use crate::policy::{PolicySlot, PolicyStore, PolicyUnavailable};

/// How many of one batch's events a tenant's rules may run into the time limit on before the
/// rest of its events in that batch are dead-lettered unjudged. Tenants share arbiter threads
/// and a batch is stored only once all of it is judged, so this bounds what one tenant's
/// runaway rule costs everyone else to about twice this many time limits per batch (each
/// stopped event is tried twice).
pub const LIMIT_STOPS_PER_BATCH: usize = 2;

/// The tenants' entities, activated by their first events.
pub type TenantDirectory = EntityDirectory<TenantActor>;

/// Why an event was not judged, for its dead letter.
fn not_evaluated(stopped: usize) -> String {
    format!(
        "skipped: {stopped} of this tenant's earlier events in the same batch ran into the \
         evaluation time limit, so the rest of its batch was set aside unjudged; fix the \
         policy, then re-drive them with `portcullis dlq replay`"
    )
}

/// Judges one tenant's events. Its state is its slot in the [`PolicyStore`], where every
/// activation of the tenant's bundle is published: each batch is judged by the generation
/// serving when it arrives, on an evaluator of that generation.
pub struct TenantActor {
    tenant: TenantId,
    store: Arc<PolicyStore>,
    slot: Arc<PolicySlot>,
    lease: Lease,
}

impl Entity for TenantActor {
    type Key = TenantId;
    type Services = PolicyStore;
    type Error = PolicyUnavailable;
    const KIND: &'static str = "tenant";

    async fn activate(
        tenant: TenantId,
        store: Arc<PolicyStore>,
        lease: Lease,
    ) -> Result<Self, PolicyUnavailable> {
        let slot = match store.slot(&tenant) {
            Some(slot) => slot,
            None => {
                // Reading and compiling a bundle blocks: not on this async thread.
                let (s, t) = (store.clone(), tenant.clone());
                tokio::task::spawn_blocking(move || s.activate(&t))
                    .await
                    .map_err(|_| PolicyUnavailable::Unusable {
                        tenant: tenant.clone(),
                        reason: "its activation was cut short".into(),
                    })??
            }
        };
        Ok(Self {
            tenant,
            store,
            slot,
            lease,
        })
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;
}

impl Supervised for TenantActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.lease.restarting();
        // The evaluator that panicked was dropped; the next batch runs on a fresh one of the
        // generation serving then. The slot is looked up again all the same: state reloads.
        if let Some(slot) = self.store.slot(&self.tenant) {
            self.slot = slot;
        }
    }
}

impl Handler<Judge> for TenantActor {
    type Result = Vec<(Event, Verdict)>;

    fn handle(&mut self, msg: Judge, ctx: &mut Context<Self>) -> Vec<(Event, Verdict)> {
        let serving = self.slot.load_full();
        let mut context = PolicyContext::neutral(msg.now);
        let mut out = Vec::with_capacity(msg.events.len());
        let mut stopped = 0;
        let mut anomaly = msg.anomaly.into_iter();
        let mut protection = msg.protection.into_iter();
        let mut signals = msg.signals.into_iter();
        let mut events = msg.events.into_iter();
        while let Some(mut event) = events.next() {
            let seen = anomaly.next().unwrap_or_default();
            context.anomaly_score = seen.score;
            let about = signals.next().unwrap_or_else(|| std::sync::Arc::from([]));
            context.principal_trust = trust_after(seen.trust, &about, msg.now);
            context.signals = about;
            context.set_protection(protection.next().flatten());
            if stopped == LIMIT_STOPS_PER_BATCH {
                out.push((event, Verdict::Refused(not_evaluated(stopped))));
                continue;
            }
            // Judged: what is kept of the event (stored, streamed) is masked by the bundle that
            // judged it. A dead letter keeps the record whole, for replay.
            let mut judge = |event: &mut Event| {
                catch_panic(ctx, &self.tenant, || {
                    let decision =
                        serving.with_evaluator(|policy| policy.evaluate(event, &context))?;
                    serving.policy().mask().apply_to_event(event);
                    Ok::<_, PolicyError>(decision)
                })
            };
            let mut judged = judge(&mut event);
            // The limit is wall-clock time: a host that stalls this thread (a busy machine, a
            // VM's pause) can stop a rule that is not slow. One more try tells them apart; a
            // rule that is slow stops again.
            if matches!(judged, Ok(Err(PolicyError::LimitExceeded(_)))) {
                judged = judge(&mut event);
            }
            match judged {
                Ok(Ok(decision)) => out.push((event, Verdict::Judged(decision))),
                Ok(Err(e)) => {
                    if matches!(e, PolicyError::LimitExceeded(_)) {
                        stopped += 1;
                    }
                    out.push((event, Verdict::Refused(e.to_string())));
                }
                Err(panicked) => {
                    out.push((
                        event,
                        Verdict::Refused(format!("{}: {panicked}", PolicyError::Panicked)),
                    ));
                    // The actor is stopping, to be restarted: the rest waits for that.
                    out.extend(events.by_ref().map(|e| (e, Verdict::Unjudged)));
                }
            }
        }
        out
    }
}
