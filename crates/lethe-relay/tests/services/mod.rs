//! Finding the machine's NATS and RabbitMQ for tests (shared by
//! `lethe-relay/tests/brokers.rs` and `lethe-cli/tests/relay_faults.rs`).
//!
//! A service that cannot be reached skips the test with a message locally,
//! but fails it under CI (`CI=true`): CI must never pass by skipping.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "false" && v != "0")
        .unwrap_or(false)
}

/// Skips (returns `None`) outside CI, fails under CI.
pub fn skip<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("required under CI: {what}");
    }
    eprintln!("skipping: {what}");
    None
}

pub fn run_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub fn reachable(host_port: &str) -> bool {
    match host_port.parse::<SocketAddr>() {
        Ok(addr) => TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok(),
        // A host name: let the client find out.
        Err(_) => true,
    }
}

/// `host:port` of a URL such as `nats://127.0.0.1:4222` or
/// `amqp://user:pass@127.0.0.1:5672/%2f`.
pub fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// NATS with JetStream: `LETHE_TEST_NATS`, default `nats://127.0.0.1:4222`.
pub fn nats_url() -> Option<String> {
    let url =
        std::env::var("LETHE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string());
    if reachable(host_port(&url)) {
        Some(url)
    } else {
        skip(&format!("NATS at {url} is unreachable"))
    }
}

/// RabbitMQ: `LETHE_TEST_AMQP`, default `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub fn amqp_url() -> Option<String> {
    let url = std::env::var("LETHE_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string());
    if reachable(host_port(&url)) {
        Some(url)
    } else {
        skip(&format!("RabbitMQ at {url} is unreachable"))
    }
}
