//! Memcached (being written).

use crate::sink::{SinkError, SinkResult};

pub struct MemcachedSink;

#[allow(unused_variables, clippy::new_without_default)]
impl MemcachedSink {
    pub fn new(address: &str) -> Self { MemcachedSink }
    pub async fn invalidate(&mut self, keys: &[String]) -> SinkResult<()> { Err(unimplemented()) }
    pub async fn existing(&mut self, keys: &[String]) -> SinkResult<Vec<bool>> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
