//! RabbitMQ (AMQP 0-9-1): publishes CloudEvents to an exchange with a
//! routing key rendered from a template such as `{entity}.{event}`.
//!
//! The channel runs in publisher-confirm mode: a batch counts as delivered
//! only when the broker has confirmed (taken responsibility for) every
//! message, and a negative confirm fails the batch as `Rejected`. The batch is
//! pipelined: every message is published first, then all confirms are awaited
//! under one deadline, instead of one round trip per event; the broker
//! confirms each message independently, so nothing is weakened by that.
//!
//! Messages are persistent (delivery mode 2) and carry the CloudEvent id as
//! AMQP `message_id`, so consumers can deduplicate the redeliveries that
//! at-least-once delivery implies; `type` is `lethe.<event>` and the body is
//! the structured-mode CloudEvent (`application/cloudevents+json`).
//!
//! The connection is opened on first use and dropped after any error (an
//! AMQP error also closes the channel), so the next call connects afresh. The
//! exchange `""` is the default exchange, which routes on queue names.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use lethe_core::Template;

use crate::sink::{Event, SinkError, SinkResult};

/// Bound for connecting (with opening the channel) and for a batch's confirms.
const TIMEOUT: Duration = Duration::from_secs(10);

const CONTENT_TYPE: &str = "application/cloudevents+json";

/// AMQP delivery mode for a message the broker writes to disk.
const PERSISTENT: u8 = 2;

pub struct RabbitMqSink {
    url: String,
    exchange: String,
    routing_key: Template,
    /// `None` until the first use and after an error. The connection is kept
    /// alongside its channel: dropping it closes both.
    conn: Option<(Connection, Channel)>,
}

impl RabbitMqSink {
    pub fn new(url: &str, exchange: &str, routing_key: Template) -> Self {
        RabbitMqSink {
            url: url.to_string(),
            exchange: exchange.to_string(),
            routing_key,
            conn: None,
        }
    }

    /// Publishes the batch; `Ok` only when the broker confirmed every event.
    pub async fn publish(&mut self, events: &[Event]) -> SinkResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let exchange = short(&self.exchange, "exchange name")?;
        // Everything that can be refused locally is checked before the first
        // message goes out.
        let prepared = events
            .iter()
            .map(|ev| self.prepare(ev))
            .collect::<SinkResult<Vec<_>>>()?;
        let result = self.try_publish(events, exchange, prepared).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn prepare(&self, ev: &Event) -> SinkResult<(ShortString, BasicProperties)> {
        let key = self
            .routing_key
            .render(|f| match f {
                "entity" => Some(ev.entity.clone()),
                "event" => Some(ev.event.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                SinkError::Config(format!(
                    "routing key template \"{}\" uses a field other than {{entity}} and {{event}}",
                    self.routing_key
                ))
            })?;
        let properties = BasicProperties::default()
            .with_message_id(short(&ev.id, "event id")?)
            .with_content_type(CONTENT_TYPE.into())
            .with_delivery_mode(PERSISTENT)
            .with_type(short(&format!("lethe.{}", ev.event), "event type")?);
        Ok((short(&key, "routing key")?, properties))
    }

    async fn try_publish(
        &mut self,
        events: &[Event],
        exchange: ShortString,
        prepared: Vec<(ShortString, BasicProperties)>,
    ) -> SinkResult<()> {
        let url = self.url.clone();
        let channel = self.connect().await?;
        let work = async {
            let mut confirms = Vec::with_capacity(events.len());
            let mut publish_error = None;
            for (ev, (key, properties)) in events.iter().zip(prepared) {
                let published = channel
                    .basic_publish(
                        exchange.clone(),
                        key,
                        BasicPublishOptions::default(),
                        ev.json.as_bytes(),
                        properties,
                    )
                    .await;
                match published {
                    Ok(confirm) => confirms.push((ev, confirm)),
                    Err(e) => {
                        publish_error = Some(amqp_error(&format!("publishing event {}", ev.id), e));
                        break;
                    }
                }
            }
            // When the broker closed the channel (say, no such exchange), the
            // next publish only sees a closing channel; the confirms already
            // pending carry the broker's reason, so they are read first.
            for (ev, confirm) in confirms {
                let what = format!("event {} to exchange \"{}\"", ev.id, exchange);
                match confirm.await {
                    Ok(Confirmation::Ack(_)) => {}
                    Ok(Confirmation::Nack(_)) => {
                        return Err(SinkError::Rejected(format!("RabbitMQ nacked {what}")));
                    }
                    Ok(Confirmation::NotRequested) => {
                        return Err(SinkError::Unavailable(format!(
                            "RabbitMQ channel lost confirm mode before {what}"
                        )));
                    }
                    Err(e) => return Err(amqp_error(&what, e)),
                }
            }
            publish_error.map_or(Ok(()), Err)
        };
        tokio::time::timeout(TIMEOUT, work).await.map_err(|_| {
            SinkError::Unavailable(format!(
                "RabbitMQ at {} did not confirm within {} s",
                redact(&url),
                TIMEOUT.as_secs()
            ))
        })?
    }

    async fn connect(&mut self) -> SinkResult<&Channel> {
        if self.conn.is_none() {
            let what = format!("connecting to RabbitMQ at {}", redact(&self.url));
            let open = async {
                let props =
                    ConnectionProperties::default().with_connection_name("lethe-relay".into());
                let conn = Connection::connect(&self.url, props)
                    .await
                    .map_err(|e| amqp_error(&what, e))?;
                let channel = conn
                    .create_channel()
                    .await
                    .map_err(|e| amqp_error(&what, e))?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| amqp_error(&what, e))?;
                Ok::<_, SinkError>((conn, channel))
            };
            let opened = tokio::time::timeout(TIMEOUT, open).await.map_err(|_| {
                SinkError::Unavailable(format!("{what}: timed out after {} s", TIMEOUT.as_secs()))
            })??;
            self.conn = Some(opened);
        }
        Ok(&self.conn.as_ref().expect("connected above").1)
    }
}

/// An AMQP short string (at most 255 bytes), refused by name when longer.
fn short(value: &str, what: &str) -> SinkResult<ShortString> {
    ShortString::try_new(value).map_err(|e| SinkError::Rejected(format!("{what} \"{value}\": {e}")))
}

fn amqp_error(what: &str, e: lapin::Error) -> SinkError {
    let msg = format!("{what}: {e}");
    match e.kind() {
        // The broker answered with an error: no such exchange, access refused,
        // a precondition failed.
        ErrorKind::ProtocolError(_) => SinkError::Rejected(msg),
        ErrorKind::AuthProviderError(_) | ErrorKind::NoDefaultRuntime => SinkError::Config(msg),
        _ => SinkError::Unavailable(msg),
    }
}

/// The URL without its password (or token), for messages. NATS uses it too.
pub(crate) fn redact(url: &str) -> String {
    let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@')) else {
        return url.to_string();
    };
    if at < scheme {
        return url.to_string();
    }
    let userinfo = &url[scheme + 3..at];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{}{shown}{}", &url[..scheme + 3], &url[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(redact("nats://s3cr3t@host:4222"), "nats://***@host:4222");
    }

    #[test]
    fn refuses_overlong_routing_keys_before_connecting() {
        let ev = Event {
            id: "1".into(),
            entity: "x".repeat(300),
            event: "deleted".into(),
            json: "{}".into(),
        };
        let sink = RabbitMqSink::new(
            "amqp://127.0.0.1:1",
            "",
            Template::parse("{entity}").unwrap(),
        );
        assert!(
            matches!(sink.prepare(&ev), Err(SinkError::Rejected(m)) if m.contains("routing key"))
        );
    }
}
