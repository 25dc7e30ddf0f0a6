//! `portcullis broker`: preparing a Mosquitto for enrolled agents.

use clap::Subcommand;

use crate::config::Config;
use crate::distribution::setup_broker;

#[derive(Subcommand)]
pub enum BrokerCommand {
    /// Prepare a Mosquitto with the dynamic security plugin, as its admin ([mqtt]
    /// admin_username): make the engine's account ([mqtt] username and password) that may
    /// publish and subscribe under the topic prefix, and let every other client publish and
    /// subscribe only where its role says (enrolled agents: their own topics). Safe to
    /// repeat; run it once per broker, then `portcullis agent enroll` each agent.
    ///
    /// A broker for it (docs/operations.md, "Agent identity on the broker"):
    ///   mosquitto_ctrl dynsec init /var/lib/mosquitto/dynsec.json portcullis-admin "$ADMIN_PW"
    ///   # mosquitto.conf: plugin .../mosquitto_dynamic_security.so
    ///   #                 plugin_opt_config_file /var/lib/mosquitto/dynsec.json
    ///   PORTCULLIS_MQTT__ADMIN_USERNAME=portcullis-admin PORTCULLIS_MQTT__ADMIN_PASSWORD="$ADMIN_PW" \
    ///   PORTCULLIS_MQTT__USERNAME=portcullis-engine PORTCULLIS_MQTT__PASSWORD="$ENGINE_PW" \
    ///     portcullis broker setup
    #[command(verbatim_doc_comment)]
    Setup,
}

pub async fn run(config: &Config, cmd: BrokerCommand) -> anyhow::Result<()> {
    match cmd {
        BrokerCommand::Setup => {
            setup_broker(&config.mqtt).await?;
            println!(
                "broker {}:{} ready: {} may publish under {}/, other clients only where their role allows",
                config.mqtt.host,
                config.mqtt.port,
                config.mqtt.username.as_deref().unwrap_or("-"),
                config.mqtt.topic_prefix
            );
            Ok(())
        }
    }
}
