//! File (JSON Lines) (being written).

use crate::sink::{SinkError, SinkResult};

pub struct FileSink;

#[allow(unused_variables, clippy::new_without_default)]
impl FileSink {
    pub fn new(path: &str) -> Self { FileSink }
    pub async fn publish(&mut self, events: &[crate::sink::Event]) -> SinkResult<()> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
