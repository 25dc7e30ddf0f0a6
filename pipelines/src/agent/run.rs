//! The agent's loop: the cache first, then the broker, applying what arrives in order.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use portcullis_engine::distribution::{
    agent_client_id, agent_topic, segment_policy_topic, Accepted, AgentTopicKind, ConfigReply,
    SegmentEnforcer, SegmentId, SegmentKey, SignedEnvelope, TrustedKeys, AGENT_PROTOCOL,
};
use portcullis_engine::TenantId;
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::cache::PolicyCache;
use super::local_api;
use crate::config::MqttConfig;
use crate::retry::Backoff;

/// A hello not answered within this long is sent again.
const HELLO_RETRY: Duration = Duration::from_secs(10);

pub struct AgentOptions {
    pub tenant: TenantId,
    pub agent: String,
    pub groups: Vec<String>,
    pub state_dir: PathBuf,
    pub trusted: TrustedKeys,
    /// The local decision API's address (loopback).
    pub listen: String,
    /// The broker, the topic prefix, the keep-alive and the agent's own account.
    pub mqtt: MqttConfig,
}

struct Agent {
    opts: AgentOptions,
    client: AsyncClient,
    enforcer: Arc<Mutex<SegmentEnforcer>>,
    cache: PolicyCache,
    subscribed: std::collections::BTreeSet<SegmentId>,
    hello_sent: Option<Instant>,
}

impl Agent {
    fn topic(&self, kind: AgentTopicKind) -> String {
        agent_topic(
            &self.opts.mqtt.topic_prefix,
            &self.opts.tenant,
            &self.opts.agent,
            kind,
        )
    }

    fn segment_topic(&self, segment: &SegmentId) -> String {
        segment_policy_topic(
            &self.opts.mqtt.topic_prefix,
            &SegmentKey {
                tenant: self.opts.tenant.clone(),
                segment: segment.clone(),
            },
        )
    }

    fn applied(&self) -> std::collections::BTreeMap<SegmentId, u64> {
        self.enforcer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .applied()
    }

    fn subscribe(&mut self, segment: &SegmentId) {
        if self.subscribed.insert(segment.clone()) {
            let _ = self
                .client
                .try_subscribe(self.segment_topic(segment), QoS::AtLeastOnce);
        }
    }

    fn hello(&mut self) {
        let applied = self.applied();
        let body =
            json!({"protocol": AGENT_PROTOCOL, "groups": self.opts.groups, "applied": applied});
        let _ = self.client.try_publish(
            self.topic(AgentTopicKind::Hello),
            QoS::AtLeastOnce,
            false,
            body.to_string(),
        );
        self.hello_sent = Some(Instant::now());
    }

    fn status(&self, online: bool) {
        let body = json!({"protocol": AGENT_PROTOCOL, "online": online, "applied": self.applied()});
        let _ = self.client.try_publish(
            self.topic(AgentTopicKind::Status),
            QoS::AtLeastOnce,
            true,
            body.to_string(),
        );
    }

    /// Offers one envelope; whether something new is enforced.
    fn offer(&mut self, topic_segment: Option<&SegmentId>, envelope: &SignedEnvelope) -> bool {
        let accepted = self
            .enforcer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .accept(topic_segment, envelope);
        match accepted {
            Accepted::Applied { segment, version } => {
                if let Err(e) = self.cache.save(&segment, envelope) {
                    warn!(%segment, error = %e, "applied, but cannot keep it on disk");
                }
                info!(%segment, version, "applied {segment} v{version}");
                self.subscribe(&segment);
                true
            }
            Accepted::AlreadyHave { segment, version } => {
                // The retained copy on (re)subscribing, a redelivery or a replay.
                info!(%segment, version, "{segment} v{version} already applied; ignored");
                false
            }
            Accepted::Gap { segment, missing } => {
                info!(%segment, from = missing.start(), to = missing.end(),
                      "{segment}: versions {}..={} missing; asking for them", missing.start(), missing.end());
                if self.hello_sent.is_none_or(|at| at.elapsed() > HELLO_RETRY) {
                    self.hello();
                }
                false
            }
            Accepted::Refused(why) => {
                warn!(segment = ?topic_segment.map(|s| s.to_string()), reason = %why, "refused a segment policy");
                false
            }
        }
    }

    fn on_config(&mut self, reply: ConfigReply) -> bool {
        self.hello_sent = None;
        if let Some(why) = reply.error {
            warn!(reason = %why, "the engine refused our hello");
            return false;
        }
        let mut changed = false;
        let ours: std::collections::BTreeSet<SegmentId> = reply
            .segments
            .iter()
            .map(|s| s.segment_id.clone())
            .collect();
        for segment in reply.segments {
            self.subscribe(&segment.segment_id);
            for envelope in &segment.versions {
                changed |= self.offer(Some(&segment.segment_id), envelope);
            }
        }
        // Segments we no longer belong to (a group or a rule removed).
        for segment in self.applied().into_keys().filter(|s| !ours.contains(s)) {
            self.enforcer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(&segment);
            let _ = self.cache.remove(&segment);
            if self.subscribed.remove(&segment) {
                let _ = self.client.try_unsubscribe(self.segment_topic(&segment));
            }
            info!(%segment, "no longer in segment {segment}; its policy is dropped");
            changed = true;
        }
        changed
    }
}

/// Runs the agent until `cancel` fires.
pub async fn run_agent(opts: AgentOptions, cancel: CancellationToken) -> anyhow::Result<()> {
    let cache = PolicyCache::open(&opts.state_dir).with_context(|| {
        format!(
            "cannot use the state directory {}",
            opts.state_dir.display()
        )
    })?;
    let enforcer = Arc::new(Mutex::new(SegmentEnforcer::new(
        opts.tenant.clone(),
        opts.trusted.clone(),
    )));
    let mut on_disk = 0;
    for (segment, envelope) in cache.load()? {
        let outcome = envelope.map(|e| {
            enforcer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .accept(Some(&segment), &e)
        });
        match outcome {
            Ok(Accepted::Applied { .. }) => on_disk += 1,
            Ok(other) => {
                warn!(%segment, outcome = ?other, "cached policy refused; it is dropped");
                let _ = cache.remove(&segment);
            }
            Err(e) => {
                warn!(%segment, error = %e, "cached policy unreadable; it is dropped");
                let _ = cache.remove(&segment);
            }
        }
    }
    if on_disk > 0 {
        info!("found {on_disk} segments on disk, skipping bootstrap");
    } else {
        info!("no policy on disk: bootstrapping from the engine");
    }
    let (api, addr) = local_api::start(&opts.listen, enforcer.clone())
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    info!(%addr, "local decision API: POST http://{addr}/v1/data/segments/<segment>/<rule>");

    // The agent's own account (from `portcullis agent enroll`), if any: the CLI never hands
    // it the engine's.
    let mut mqtt = opts
        .mqtt
        .options(agent_client_id(&opts.tenant, &opts.agent));
    let status_topic = agent_topic(
        &opts.mqtt.topic_prefix,
        &opts.tenant,
        &opts.agent,
        AgentTopicKind::Status,
    );
    mqtt.set_clean_session(false)
        .set_max_packet_size(16 * 1024 * 1024, 1024 * 1024)
        .set_last_will(LastWill::new(
            status_topic,
            json!({"protocol": AGENT_PROTOCOL, "online": false}).to_string(),
            QoS::AtLeastOnce,
            true,
        ));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 256);
    let mut agent = Agent {
        opts,
        client,
        enforcer,
        cache,
        subscribed: Default::default(),
        hello_sent: None,
    };
    let config_topic = agent.topic(AgentTopicKind::Config);
    let mut bootstrapped = on_disk > 0;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                // A hello the engine did not answer (restarting, say) is asked again.
                if agent.hello_sent.is_some_and(|at| at.elapsed() > HELLO_RETRY) {
                    agent.hello();
                }
                continue;
            }
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
                let _ = agent
                    .client
                    .try_subscribe(config_topic.clone(), QoS::AtLeastOnce);
                agent.subscribed.clear();
                for segment in agent.applied().into_keys() {
                    agent.subscribe(&segment);
                }
                if !bootstrapped || !ack.session_present {
                    // No policy yet, or the broker kept nothing for us: ask for what we lack.
                    agent.hello();
                    bootstrapped = true;
                } else {
                    info!("session resumed; waiting for queued messages");
                }
                agent.status(true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let changed = if p.topic == config_topic {
                    match ConfigReply::parse(&p.payload) {
                        Ok(reply) => agent.on_config(reply),
                        Err(e) => {
                            warn!(error = %e, "unreadable config from the engine");
                            false
                        }
                    }
                } else if p.payload.is_empty() {
                    false // a retained policy cleared
                } else {
                    let segment = agent
                        .subscribed
                        .iter()
                        .find(|s| agent.segment_topic(s) == p.topic)
                        .cloned();
                    match serde_json::from_slice::<SignedEnvelope>(&p.payload) {
                        Ok(envelope) if segment.is_some() => {
                            agent.offer(segment.as_ref(), &envelope)
                        }
                        Ok(_) => false,
                        Err(e) => {
                            warn!(topic = %p.topic, error = %e, "not a signed envelope; refused");
                            false
                        }
                    }
                };
                if changed {
                    agent.status(true);
                }
            }
            Ok(_) => {}
            Err(e) => {
                let enforced = agent.applied().len();
                warn!(error = %e, "broker unreachable; still enforcing {enforced} segments from disk");
                if backoff.wait(&cancel).await.is_err() {
                    break;
                }
            }
        }
    }
    agent.status(false);
    let _ = agent.client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
    api.stop(true).await;
    info!("agent stopped");
    Ok(())
}
