//! An engine run inside a benchmark's process, on a world of its own: its database
//! (`{database}_bench`), topic prefix, client id and signing key, so a benchmark never touches
//! an operator's data or agents.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::pipeline::bench_url;
use crate::config::Config;
use crate::runtime;
use crate::sinks::mqtt::discard_session;
use crate::telemetry::stats::Stats;

pub(super) struct BenchWorld {
    /// The settings the engine runs with.
    pub cfg: Config,
    /// Short, unique to this run: in ids, topics and names.
    pub run: String,
    /// Where its signing key lives (removed at the end).
    keys: PathBuf,
}

impl BenchWorld {
    /// Distribution only: no Kafka, no HTTP, no tenant bundles to watch.
    pub fn new(config: &Config) -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let keys = std::env::temp_dir().join(format!("portcullis-bench-{run}"));
        let mut cfg = config.clone();
        cfg.postgres.url = bench_url(&config.postgres.url);
        cfg.kafka.enabled = false;
        cfg.http.enabled = false;
        cfg.policy.watch = false;
        cfg.mqtt.client_id = format!("portcullis-bench-{run}");
        // Under the operator's prefix (a broker's engine role covers it), a level deeper than
        // any engine's filters reach.
        cfg.mqtt.topic_prefix = format!("{}/bench-{run}", config.mqtt.topic_prefix);
        cfg.distribution.signing_key_file = keys.join("bench.key");
        Self { cfg, run, keys }
    }

    /// Starts the engine in this process; returns once it is subscribed to MQTT.
    pub async fn start_engine(&self) -> anyhow::Result<InProcessEngine> {
        let stats = Arc::new(Stats::default());
        let cancel = CancellationToken::new();
        let handle = actix_rt::spawn(runtime::run(
            self.cfg.clone(),
            stats.clone(),
            cancel.clone(),
        ));
        let until = Instant::now() + Duration::from_secs(30);
        while !stats
            .mqtt_subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            if handle.is_finished() || Instant::now() > until {
                cancel.cancel();
                handle.await??;
                bail!("the engine did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(InProcessEngine {
            stats,
            cancel,
            handle,
        })
    }

    /// Stops the engine, discards its persistent sessions (this run's alone) and its key.
    pub async fn finish(self, engine: InProcessEngine) -> anyhow::Result<()> {
        engine.cancel.cancel();
        engine.handle.await??;
        for id in [
            self.cfg.mqtt.client_id.clone(),
            format!("{}-agents", self.cfg.mqtt.client_id),
        ] {
            discard_session(&self.cfg.mqtt, &id).await;
        }
        let _ = std::fs::remove_dir_all(&self.keys);
        Ok(())
    }
}

pub(super) struct InProcessEngine {
    pub stats: Arc<Stats>,
    /// Also what a benchmark's own helpers stop with.
    pub cancel: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}
