//! greenhouse-extract copies Greenhouse Harvest v3 data into typed Parquet on object storage.
//!
//! The data path: `config` → validated [`config::Config`] → for each selected stream of the
//! [`registry`]: plan a window → fetch pages from Harvest ([`harvest`]) → convert JSON records to
//! Arrow batches → write Parquet through `object_store` → commit the stream's bookmark after its
//! files are closed.
//!
//! [`protocol`] runs the same engine as a Singer tap or an Airbyte source: records and state go
//! to stdout as protocol messages instead of Parquet and state objects.
//!
//! [`webhooks`] is the receiver of Greenhouse's web hooks (`webhooks serve`): it stores each
//! signed event on the destination, and the next `sync` turns them into tombstones.
//!
//! The Harvest v3 simulator used by the tests, the benchmarks and the offline demo is a crate of
//! its own (`crates/harvest-sim`); this library neither contains nor depends on it.

pub mod allocator;
pub mod cancel;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod convert;
pub mod current;
pub mod ddl;
pub mod docs;
pub mod dryrun;
pub mod error;
pub mod events;
pub mod harvest;
pub mod lineage;
pub mod logging;
pub mod memory;
pub mod privacy;
pub mod progress;
pub mod protocol;
pub mod purge;
pub mod registry;
pub mod secrets;
pub mod sink;
pub mod state;
pub mod statecmd;
pub mod storage;
pub mod sync;
pub mod table;
pub mod webhooks;
