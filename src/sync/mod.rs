//! The sync engine: for each selected stream, plan a window, fetch its pages, convert them to
//! Arrow, write Parquet, and commit the stream's bookmark once its files are durably written.
//!
//! Contract:
//! - The signpost (upper bound of every incremental window) is fixed once, at run start, a small
//!   skew before now. A bookmark only ever moves to a signpost, and only after every page of that
//!   stream's window was read and its files closed (object store put/multipart complete).
//! - Streams run concurrently (`concurrency`) under the one shared rate budget of the client.
//! - A stream that fails or lacks its scope is reported and skipped; the others still commit.
//!   An authentication failure stops the run (every stream would fail the same way).
//! - One run per destination at a time: the run holds the state lease for its whole life; a second
//!   run fails fast with the conflict exit code and changes nothing.
//! - Interruption (the caller's cancel flag; the CLI sets it on SIGINT/SIGTERM) stops fetching,
//!   aborts in-flight files (no partial object stays behind; complete files of an uncommitted
//!   stream are deleted) and leaves committed streams committed. Nothing here holds a whole
//!   stream in memory: pages flow through a bounded channel.
//!
//! The rooms: [`run`] (lifecycle, scheduling, per-stream outcome), [`read`] (pages → writer,
//! chains, partitions, slices), [`commit`] (what a durable unit records), [`window`] (planning a
//! stream's window), [`slices`] (slice heuristics, planning and range algebra), [`output`] (the
//! one trait every destination implements: Parquet, protocol messages, memory for tests),
//! [`summary`] (the report and the table printed at the end).

pub mod commit;
mod context;
pub mod deletes;
mod index;
pub mod options;
pub mod output;
pub mod read;
pub mod run;
pub mod slices;
pub mod summary;
pub mod window;

#[cfg(test)]
mod tests;

pub use options::{
    ENV_SIGNPOST_SKEW_MS, RunReport, Selected, SyncOptions, signpost, signpost_skew,
};
pub use run::{run, run_messages, run_with};
