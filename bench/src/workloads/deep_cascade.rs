//! Workload 1: delete and restore one root with a 42,001-row cascade
//! (1 root, 2,000 children, 20 grandchildren each), Lethe against three
//! hand-written UPDATEs in one transaction.

use std::time::Instant;

use lethe_store::DeleteRequest;

use super::{Settings, expect_rows, prepare, progress};
use crate::Result;
use crate::fixtures::{Chain, now_text};
use crate::report::{Figure, Target};
use crate::sql::Dialect;

pub const NAME: &str = "deep";
const TARGET: f64 = 1.5;

pub async fn run(s: &Settings, d: Dialect, url: &str) -> Result<Vec<Figure>> {
    let chain = Chain::tree(s.scaled(2_000), 20);
    let total = chain.total_rows();
    let tables = chain.tables();
    progress(d.name(), NAME, &format!("loading {total} rows"));
    let (pool, engine) = prepare(url, &chain).await?;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;

    // [Lethe delete, Lethe restore, baseline delete, baseline restore]
    let mut times: [Vec<f64>; 4] = Default::default();
    // Run 0 is a warm-up (statement caches, buffer cache) and is not counted.
    // Each operation leaves the tree as the next one needs it.
    for run in 0..=s.repetitions {
        progress(d.name(), NAME, &format!("run {run}/{}", s.repetitions));
        let mut took = [0.0; 4];

        let t = Instant::now();
        let done = engine.delete(&DeleteRequest::new("roots", "1")).await?;
        took[0] = ms(t);
        expect_rows(
            "Lethe delete",
            done.affected.iter().map(|c| c.rows).sum(),
            total,
        )?;
        pool.settle(&tables).await?;

        let t = Instant::now();
        let back = engine.restore(&done.deletion_id, None).await?;
        took[1] = ms(t);
        expect_rows(
            "Lethe restore",
            back.restored.iter().map(|c| c.rows).sum(),
            total,
        )?;
        pool.settle(&tables).await?;

        let id = uuid::Uuid::now_v7().to_string();
        let t = Instant::now();
        let n = pool
            .transaction(&chain.baseline_delete(d, &now_text(), &id, 1))
            .await?;
        took[2] = ms(t);
        expect_rows("baseline delete", n.iter().sum(), total)?;
        pool.settle(&tables).await?;

        let t = Instant::now();
        let n = pool.transaction(&chain.baseline_restore(d, &id)).await?;
        took[3] = ms(t);
        expect_rows("baseline restore", n.iter().sum(), total)?;
        pool.settle(&tables).await?;

        if run > 0 {
            for (v, x) in times.iter_mut().zip(took) {
                v.push(x);
            }
        }
    }
    engine.db().close().await;
    pool.close().await;

    let figure = |measure: &str, lethe: &[f64], baseline: &[f64]| {
        Figure::median_millis(
            d.name(),
            NAME,
            format!("{measure} {total} rows (median of {})", s.repetitions),
            lethe,
            baseline,
            Target::MaxRatio(TARGET),
        )
    };
    Ok(vec![
        figure("delete", &times[0], &times[2]),
        figure("restore", &times[1], &times[3]),
    ])
}
