//! NATS JetStream: publishes CloudEvents to subjects rendered from a
//! template such as `shop.{entity}.{event}`.
//!
//! Every message carries `Nats-Msg-Id` = the CloudEvent id, so a batch that
//! is delivered again (after a timeout, a crash, a replay) is stored once:
//! JetStream drops a repeated id inside the stream's duplicate window and
//! acks it as a duplicate. The payload is the structured-mode CloudEvent with
//! `Content-Type: application/cloudevents+json`.
//!
//! A batch is pipelined: all publishes go out first, then all acks are
//! awaited under one deadline. Waiting for each ack before sending the next
//! message would cost one round trip per event; JetStream acks each message
//! independently, so nothing is lost by asking for them all at once, and the
//! batch still only counts as delivered when every ack is positive.
//!
//! The client is created on first use and dropped after any error, so the
//! next call connects afresh (and re-checks the stream): a server that was
//! down only delays deliveries. With a `stream` name, the first connection
//! makes sure a stream of that name captures the template's subjects (each
//! `{field}` becomes the wildcard `*`), so events are not published into the
//! void.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use lethe_core::Template;
use lethe_core::template::Piece;

use super::rabbitmq::redact;
use crate::sink::{Event, SinkError, SinkResult};

/// Bound for connecting (including the stream check) and for a batch's acks.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Events in flight (sent, ack awaited) at a time: well under async-nats's
/// limit of 5,000 unacknowledged publishes per context.
const WINDOW: usize = 2_000;

const CONTENT_TYPE: &str = "application/cloudevents+json";

pub struct NatsSink {
    url: String,
    subject: Template,
    stream: Option<String>,
    /// The JetStream context (it owns the client); `None` until the first
    /// use and after an error.
    js: Option<jetstream::Context>,
}

impl NatsSink {
    pub fn new(url: &str, subject: Template, stream: Option<String>) -> Self {
        NatsSink {
            url: url.to_string(),
            subject,
            stream,
            js: None,
        }
    }

    /// Publishes the batch; `Ok` only when JetStream acked every event (a
    /// duplicate counts: it is already stored).
    pub async fn publish(&mut self, events: &[Event]) -> SinkResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Render every subject before sending anything, so a bad template
        // fails the batch without a partial publish.
        let subjects = events
            .iter()
            .map(|ev| self.render(ev))
            .collect::<SinkResult<Vec<_>>>()?;
        let result = self.try_publish(events, subjects).await;
        if result.is_err() {
            // A fresh connection next time (and a fresh stream check).
            self.js = None;
        }
        result
    }

    /// The stream subject that captures every subject the template can
    /// render: each dot-separated token holding a `{field}` becomes `*`
    /// (`shop.{entity}.{event}` -> `shop.*.*`).
    pub fn stream_subject(&self) -> String {
        stream_subject(&self.subject)
    }

    fn render(&self, ev: &Event) -> SinkResult<String> {
        let subject = self
            .subject
            .render(|f| match f {
                "entity" => Some(ev.entity.clone()),
                "event" => Some(ev.event.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                SinkError::Config(format!(
                    "NATS subject template \"{}\" uses a field other than {{entity}} and {{event}}",
                    self.subject
                ))
            })?;
        let valid = !subject.is_empty()
            && subject.split('.').all(|t| {
                !t.is_empty() && t != "*" && t != ">" && !t.chars().any(|c| c.is_whitespace())
            });
        if !valid {
            return Err(SinkError::Rejected(format!(
                "\"{subject}\" (event {}) is not a valid NATS subject",
                ev.id
            )));
        }
        Ok(subject)
    }

    /// Publishes in windows of [`WINDOW`] events: all of a window are sent,
    /// then its acks awaited together. async-nats allows at most 5,000
    /// unacknowledged publishes per context, so sending a whole batch of
    /// 20,000 before awaiting any ack would wait forever for a permit.
    async fn try_publish(&mut self, events: &[Event], subjects: Vec<String>) -> SinkResult<()> {
        let mut subjects = subjects.into_iter();
        for window in events.chunks(WINDOW) {
            let these: Vec<String> = subjects.by_ref().take(window.len()).collect();
            self.try_publish_window(window, these).await?;
        }
        Ok(())
    }

    async fn try_publish_window(
        &mut self,
        events: &[Event],
        subjects: Vec<String>,
    ) -> SinkResult<()> {
        let js = self.connect().await?;
        // A client that lost its connection buffers publishes and waits for
        // its own reconnect; fail fast instead of waiting out the ack timeout.
        if js.client().connection_state() != State::Connected {
            return Err(SinkError::Unavailable(format!(
                "NATS connection to {} lost",
                redact(&self.url)
            )));
        }

        let mut acks = Vec::with_capacity(events.len());
        for (ev, subject) in events.iter().zip(subjects) {
            let message = PublishMessage::build()
                .payload(ev.json.clone().into())
                .message_id(&ev.id)
                .header("Content-Type", CONTENT_TYPE);
            let ack = js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| match e.kind() {
                    PublishErrorKind::MaxPayloadExceeded => SinkError::Rejected(format!(
                        "NATS refused event {} on {subject}: {e}",
                        ev.id
                    )),
                    _ => SinkError::Unavailable(format!(
                        "NATS publish of event {} on {subject} failed: {e}",
                        ev.id
                    )),
                })?;
            acks.push((ev, ack));
        }

        let wait = async {
            for (ev, ack) in acks {
                ack.await.map_err(|e| ack_error(&ev.id, e))?;
            }
            Ok(())
        };
        // The client would resend after its own reconnect, but the acks
        // could then take until the timeout: a lost connection fails the
        // batch at once (a retry is safe, the message ids deduplicate it).
        let client = js.client();
        let lost = async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if client.connection_state() != State::Connected {
                    break;
                }
            }
        };
        let waited = tokio::time::timeout(TIMEOUT, async {
            tokio::select! {
                result = wait => result,
                () = lost => Err(SinkError::Unavailable(format!(
                    "NATS connection to {} lost while waiting for acks",
                    redact(&self.url)
                ))),
            }
        });
        waited.await.map_err(|_| {
            SinkError::Unavailable(format!(
                "NATS acks not received within {} s",
                TIMEOUT.as_secs()
            ))
        })?
    }

    async fn connect(&mut self) -> SinkResult<&jetstream::Context> {
        if self.js.is_none() {
            let js = tokio::time::timeout(TIMEOUT, self.open())
                .await
                .map_err(|_| {
                    SinkError::Unavailable(format!(
                        "connecting to NATS at {} timed out after {} s",
                        redact(&self.url),
                        TIMEOUT.as_secs()
                    ))
                })??;
            self.js = Some(js);
        }
        Ok(self.js.as_ref().expect("connected above"))
    }

    async fn open(&self) -> SinkResult<jetstream::Context> {
        use async_nats::ConnectErrorKind as K;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(TIMEOUT)
            .request_timeout(Some(TIMEOUT))
            // The client reconnects by itself (for 40 s or so), which rides
            // out a blip between batches; after an error the sink drops it
            // and connects anew, and the limit ends the dropped one's retries.
            .max_reconnects(20)
            .connect(self.url.as_str())
            .await
            .map_err(|e| {
                let msg = format!("connecting to NATS at {}: {e}", redact(&self.url));
                match e.kind() {
                    K::ServerParse | K::Authentication | K::AuthorizationViolation | K::Tls => {
                        SinkError::Config(msg)
                    }
                    _ => SinkError::Unavailable(msg),
                }
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(TIMEOUT)
            .build(client);
        if let Some(name) = &self.stream {
            ensure_stream(&js, name, stream_subject(&self.subject)).await?;
        }
        Ok(js)
    }
}

async fn ensure_stream(js: &jetstream::Context, name: &str, subject: String) -> SinkResult<()> {
    use jetstream::context::CreateStreamErrorKind as K;
    let config = jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![subject.clone()],
        ..Default::default()
    };
    js.get_or_create_stream(config).await.map_err(|e| {
        let msg = format!("NATS stream \"{name}\" for \"{subject}\": {e}");
        match e.kind() {
            K::TimedOut | K::JetStreamUnavailable => SinkError::Unavailable(msg),
            K::EmptyStreamName | K::InvalidStreamName | K::DomainAndExternalSet => {
                SinkError::Config(msg)
            }
            _ => SinkError::Rejected(msg),
        }
    })?;
    Ok(())
}

fn ack_error(id: &str, e: jetstream::context::PublishError) -> SinkError {
    let msg = format!("NATS did not store event {id}: {e}");
    match e.kind() {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => SinkError::Unavailable(msg),
        // No stream captures the subject, or the stream refused the message.
        _ => SinkError::Rejected(msg),
    }
}

fn stream_subject(template: &Template) -> String {
    // Mark fields with a character a subject cannot hold, then widen every
    // token that holds one.
    const FIELD: char = '\u{0}';
    let mut marked = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Text(t) => marked.push_str(t),
            Piece::Field(_) => marked.push(FIELD),
        }
    }
    marked
        .split('.')
        .map(|token| if token.contains(FIELD) { "*" } else { token })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject_of(t: &str) -> String {
        stream_subject(&Template::parse(t).unwrap())
    }

    #[test]
    fn stream_subject_widens_fields() {
        assert_eq!(subject_of("shop.{entity}.{event}"), "shop.*.*");
        assert_eq!(subject_of("shop.x{entity}.all"), "shop.*.all");
        assert_eq!(subject_of("{event}"), "*");
        assert_eq!(subject_of("fixed.subject"), "fixed.subject");
    }

    #[test]
    fn render_refuses_unknown_fields_and_bad_subjects() {
        let ev = Event {
            id: "1".into(),
            entity: "customer".into(),
            event: "deleted".into(),
            json: "{}".into(),
        };
        let sink = NatsSink::new("nats://x", Template::parse("a.{id}").unwrap(), None);
        assert!(matches!(sink.render(&ev), Err(SinkError::Config(_))));
        let sink = NatsSink::new("nats://x", Template::parse("a.{entity}").unwrap(), None);
        assert_eq!(sink.render(&ev).unwrap(), "a.customer");
        let spaced = Event {
            entity: "has space".into(),
            ..ev
        };
        assert!(matches!(sink.render(&spaced), Err(SinkError::Rejected(_))));
    }
}
