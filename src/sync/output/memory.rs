//! An output that keeps everything in memory, for the engine's own tests: the records each unit
//! wrote (visible only once the unit closed), every committed state, and what was aborted or
//! discarded — so a test can check the engine's contract without a destination.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{CommitUnit, Output, PageOut, UnitWriter, WriteError};
use crate::error::Error;
use crate::registry::Stream;
use crate::sink::WrittenFile;
use crate::state::State;
use crate::sync::options::Selected;

/// What a [`MemoryOutput`] received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Records of closed units, per stream, in the order written.
    pub rows: BTreeMap<String, Vec<serde_json::Value>>,
    /// Every committed state, in order.
    pub commits: Vec<(String, State)>,
    /// Units opened, closed and aborted.
    pub opened: usize,
    pub closed: usize,
    pub aborted: usize,
}

#[derive(Clone, Default)]
pub struct MemoryOutput {
    pub received: Arc<Mutex<Received>>,
}

impl MemoryOutput {
    /// A copy of what was received so far.
    pub fn received(&self) -> Received {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap()
    }
}

#[async_trait]
impl Output for MemoryOutput {
    fn open(
        &self,
        sel: &Selected<'_>,
        _tag: Option<&str>,
        _extracted_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Box<dyn UnitWriter>, WriteError> {
        self.lock().opened += 1;
        Ok(Box::new(MemoryUnit {
            stream: sel.stream.name.clone(),
            rows: Vec::new(),
            received: self.received.clone(),
        }))
    }

    async fn commit(
        &self,
        stream: &Stream,
        _unit: &CommitUnit<'_>,
        mut next: State,
    ) -> Result<State, Error> {
        next.generation += 1;
        self.lock()
            .commits
            .push((stream.name.clone(), next.clone()));
        Ok(next)
    }
}

struct MemoryUnit {
    stream: String,
    rows: Vec<serde_json::Value>,
    received: Arc<Mutex<Received>>,
}

#[async_trait]
impl UnitWriter for MemoryUnit {
    async fn write(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<PageOut, WriteError> {
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| WriteError::Unreadable(e.to_string()))?;
        let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
        let before = self.rows.len();
        self.rows.extend(
            records
                .into_iter()
                .filter(|r| skip_from_id.is_none_or(|low| r["id"].as_i64() < Some(low))),
        );
        Ok(PageOut {
            rows: (self.rows.len() - before) as u64,
            ids,
            ..PageOut::default()
        })
    }

    async fn write_tombstones(
        &mut self,
        rows: &[crate::state::ids::Deleted],
    ) -> Result<(), WriteError> {
        self.rows.extend(rows.iter().map(|d| {
            serde_json::json!({
                "id": d.id,
                "_deleted": true,
                "_deleted_by": d.by.as_str(),
                "_merged_into": d.merged_into,
            })
        }));
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError> {
        let mut r = self.received.lock().unwrap();
        r.closed += 1;
        r.rows.entry(self.stream).or_default().extend(self.rows);
        Ok(Vec::new())
    }

    async fn abort(self: Box<Self>) {
        self.received.lock().unwrap().aborted += 1;
    }
}
