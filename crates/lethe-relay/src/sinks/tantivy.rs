//! Tantivy (being written).

use crate::sink::{SinkError, SinkResult};

pub struct TantivySink;

#[allow(unused_variables, clippy::new_without_default)]
impl TantivySink {
    pub fn new(path: &str) -> Self { TantivySink }
    pub async fn apply(&mut self, index: &str, ops: &[crate::sink::SearchOp]) -> SinkResult<()> { Err(unimplemented()) }
    pub async fn contains(&mut self, index: &str, ids: &[String]) -> SinkResult<Vec<bool>> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
