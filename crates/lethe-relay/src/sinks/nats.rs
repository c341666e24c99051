//! NATS JetStream (being written).

use crate::sink::{SinkError, SinkResult};

pub struct NatsSink;

#[allow(unused_variables, clippy::new_without_default)]
impl NatsSink {
    pub fn new(url: &str, subject: lethe_core::Template, stream: Option<String>) -> Self { NatsSink }
    pub async fn publish(&mut self, events: &[crate::sink::Event]) -> SinkResult<()> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
