//! Workload 2: 1,000 small deletes, one transaction each (a parent and its 3
//! kids), the shape of an application's "Delete" button. Per-delete overhead
//! dominates here: round trips, the deletion record, the audit entry, the
//! outbox record, the commit.

use std::time::Instant;

use lethe_store::DeleteRequest;

use super::{Settings, expect_rows, prepare, progress};
use crate::Result;
use crate::fixtures::{Chain, now_text};
use crate::report::{Figure, Runs, Target, Unit, median};
use crate::sql::Dialect;

pub const NAME: &str = "single";
const KIDS: u64 = 3;
/// Each pass deletes every parent; the median pass is reported.
const PASSES: usize = 3;
const TARGET: f64 = 2.0;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let parents = s.scaled(1_000);
    let chain = Chain::parents_and_kids(parents, KIDS);
    let tables = chain.tables();
    progress(
        d.name(),
        NAME,
        &format!("loading {} rows", chain.total_rows()),
    );
    let (pool, engine) = prepare(url, &chain).await?;

    let mut lethe = Vec::new();
    let mut baseline = Vec::new();
    for pass in 1..=PASSES {
        progress(d.name(), NAME, &format!("pass {pass}/{PASSES}"));

        let t = Instant::now();
        let mut rows = 0;
        for k in 1..=parents {
            let done = engine
                .delete(&DeleteRequest::new("parents", k.to_string()))
                .await?;
            rows += done.affected.iter().map(|c| c.rows).sum::<u64>();
        }
        lethe.push(parents as f64 / t.elapsed().as_secs_f64());
        expect_rows("Lethe deletes", rows, chain.total_rows())?;
        chain.reset(&pool).await?;
        pool.settle(&tables).await?;

        let t = Instant::now();
        let mut rows = 0;
        for k in 1..=parents {
            let id = uuid::Uuid::now_v7().to_string();
            let n = pool
                .transaction(&chain.baseline_delete(d, &now_text(), &id, k))
                .await?;
            rows += n.iter().sum::<u64>();
        }
        baseline.push(parents as f64 / t.elapsed().as_secs_f64());
        expect_rows("baseline deletes", rows, chain.total_rows())?;
        chain.reset(&pool).await?;
        pool.settle(&tables).await?;
    }
    engine.db().close().await;
    pool.close().await;

    Ok(vec![Figure {
        dialect: d.name(),
        workload: NAME,
        measure: format!(
            "{parents} deletes of 1+{KIDS} rows, 1 tx each (median of {PASSES} passes)"
        ),
        unit: Unit::PerSecond("deletes/s"),
        lethe: median(&lethe),
        baseline: Some(median(&baseline)),
        target: Target::MaxRatio(TARGET),
        runs: Runs::new(&lethe, &baseline),
    }])
}
