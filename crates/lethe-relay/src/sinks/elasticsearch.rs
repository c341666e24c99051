//! Elasticsearch / OpenSearch (being written).

use crate::sink::{SinkError, SinkResult};

pub struct ElasticsearchSink;

#[allow(unused_variables, clippy::new_without_default)]
impl ElasticsearchSink {
    pub fn new(url: &str, api_key_env: Option<&str>, opensearch: bool) -> Self { ElasticsearchSink }
    pub async fn apply(&mut self, index: &str, ops: &[crate::sink::SearchOp]) -> SinkResult<()> { Err(unimplemented()) }
    pub async fn contains(&mut self, index: &str, ids: &[String]) -> SinkResult<Vec<bool>> { Err(unimplemented()) }
}

#[allow(dead_code)]
fn unimplemented() -> SinkError {
    SinkError::Config("not implemented yet".into())
}
