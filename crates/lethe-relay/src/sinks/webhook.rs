//! Webhook (being written).

use crate::sink::{SinkError, SinkResult};

pub struct WebhookSink;

#[allow(unused_variables, clippy::new_without_default)]
impl WebhookSink {
    pub fn new(url: &str, secret_env: &str, timeout: std::time::Duration) -> Self { WebhookSink }
    pub async fn publish(&mut self, events: &[crate::sink::Event]) -> SinkResult<()> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
