//! RabbitMQ (being written).

use crate::sink::{SinkError, SinkResult};

pub struct RabbitMqSink;

#[allow(unused_variables, clippy::new_without_default)]
impl RabbitMqSink {
    pub fn new(url: &str, exchange: &str, routing_key: lethe_core::Template) -> Self { RabbitMqSink }
    pub async fn publish(&mut self, events: &[crate::sink::Event]) -> SinkResult<()> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
