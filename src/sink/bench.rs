//! Throughput check of the write path (ignored by default; run in release):
//! `cargo test --release --lib sink::bench -- --ignored --nocapture`
//!
//! The pages of `convert::bench`, converted once (untimed), then timed through Arrow → ZSTD
//! Parquet → InMemory.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;

use super::{RollingWriter, SinkConfig};
use crate::convert::Converter;
use crate::convert::bench::candidate_page;
use crate::registry::Registry;

#[test]
#[ignore = "throughput check; run in release with --ignored --nocapture"]
fn candidate_write_throughput() {
    let registry = Registry::embedded().unwrap();
    let stream = registry.get("candidates").unwrap();
    let (pages, per_page) = (400, 500);
    let mut c = Converter::new(stream, "bench", Utc::now());
    let mut rows = 0;
    let batches: Vec<_> = (0..pages)
        .map(|p| {
            let page = c
                .convert_page(&candidate_page(10_000_000 - p * per_page, per_page))
                .unwrap();
            rows += page.rows;
            page.batch
        })
        .collect();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let start = Instant::now();
    let files = rt.block_on(async {
        let mut w = RollingWriter::new(
            store,
            &Path::from("bench"),
            stream,
            "bench",
            Utc::now(),
            c.schema(),
            SinkConfig::default(),
        )
        .unwrap();
        for b in &batches {
            w.write(b).await.unwrap();
        }
        w.close().await.unwrap()
    });
    let secs = start.elapsed().as_secs_f64();
    let written: u64 = files.iter().map(|f| f.bytes).sum();
    println!(
        "sink: {rows} records → {} file(s), {:.1} MB Parquet in {secs:.2} s = {:.0} records/s",
        files.len(),
        written as f64 / 1e6,
        rows as f64 / secs
    );
}
