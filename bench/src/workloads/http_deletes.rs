//! Workload: single-row deletes with one cascaded child through `lethe
//! serve`'s HTTP API (a real server on loopback, one client sending one
//! request at a time), against the same deletes through the library in the
//! same process. What it measures is the API's own cost per delete: HTTP,
//! JSON, the token check, the router, the metrics.

use std::time::{Duration, Instant};

use lethe_store::{DeleteRequest, Engine, Role};

use super::{Settings, expect_rows, prepare, progress};
use crate::Result;
use crate::fixtures::Chain;
use crate::report::{Figure, Runs, Target, Unit, median};
use crate::sql::Dialect;

pub const NAME: &str = "http";
/// Each pass deletes every parent; the median pass is reported.
const PASSES: usize = 3;
/// HTTP at least 0.7x the in-process rate.
const TARGET: f64 = 1.0 / 0.7;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let parents = s.scaled(1_000);
    let chain = Chain::parents_and_kids(parents, 1);
    let tables = chain.tables();
    progress(
        d.name(),
        NAME,
        &format!("loading {} rows", chain.total_rows()),
    );
    let (pool, engine) = prepare(url, &chain).await?;
    let token = engine.token_create("bench", Role::Operator, None).await?;
    let policy = lethe_core::parse_policy(&chain.policy_toml(url), "bench")?;
    let served = Engine::connect(policy, url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = lethe_server::ServeOptions {
        relay: false,
        jobs: false,
        token_cache: Duration::from_secs(60),
        ..Default::default()
    };
    let server = tokio::spawn(lethe_server::serve(
        served,
        Default::default(),
        opts,
        listener,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let client = reqwest::Client::new();

    let mut http = Vec::new();
    let mut lib = Vec::new();
    for pass in 1..=PASSES {
        progress(d.name(), NAME, &format!("pass {pass}/{PASSES}"));

        let t = Instant::now();
        let mut rows = 0;
        for k in 1..=parents {
            let res = client
                .post(format!("{base}/v1/deletions"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"entity": "parents", "key": k.to_string()}))
                .send()
                .await?;
            if !res.status().is_success() {
                return Err(format!("HTTP delete {k}: {}", res.text().await?).into());
            }
            let v: serde_json::Value = res.json().await?;
            rows += v["affected"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["rows"].as_u64()).sum::<u64>())
                .unwrap_or(0);
        }
        http.push(parents as f64 / t.elapsed().as_secs_f64());
        expect_rows("HTTP deletes", rows, chain.total_rows())?;
        chain.reset(&pool).await?;
        pool.settle(&tables).await?;

        let t = Instant::now();
        let mut rows = 0;
        for k in 1..=parents {
            let done = engine
                .delete(&DeleteRequest::new("parents", k.to_string()))
                .await?;
            rows += done.affected.iter().map(|c| c.rows).sum::<u64>();
        }
        lib.push(parents as f64 / t.elapsed().as_secs_f64());
        expect_rows("library deletes", rows, chain.total_rows())?;
        chain.reset(&pool).await?;
        pool.settle(&tables).await?;
    }
    let _ = stop_tx.send(());
    server.await??;
    engine.db().close().await;
    pool.close().await;

    Ok(vec![Figure {
        dialect: d.name(),
        workload: NAME,
        measure: format!(
            "{parents} deletes of 1+1 rows: HTTP API (one client) vs the library in-process (median of {PASSES} passes)"
        ),
        unit: Unit::PerSecond("deletes/s"),
        lethe: median(&http),
        baseline: Some(median(&lib)),
        target: Target::MaxRatio(TARGET),
        runs: Runs::new(&http, &lib),
    }])
}
