//! Shared helper for the extractor's integration tests: a Harvest v3 simulator to sync from.
//!
//! `Sim::start(&[...])` takes the `harvest-sim` command-line flags and starts the simulator
//! **in-process**, through its library (a dev-dependency), on a thread with its own Tokio
//! runtime ([`harvest_sim::Background`]); dropping the handle stops it. Why in-process rather
//! than spawning the `harvest-sim` binary: the binary belongs to another package of the
//! workspace, so Cargo neither builds it for these tests nor tells them its path; the library
//! needs neither, starts in milliseconds, and its own runtime keeps it serving while a test
//! blocks on an extractor child process. The simulator's own tests (crates/harvest-sim/tests)
//! spawn the binary, because some of them test the process itself.
//!
//! Everything else — tokens, pages, the `/_sim` control API — is
//! [`harvest_sim::client::SimClient`], reached through `Deref`.
#![allow(dead_code)]

use clap::Parser;
use harvest_sim::{Background, SimConfig};

#[allow(unused_imports)]
pub use harvest_sim::client::{Resp, SimClient, ids};

pub struct Sim {
    client: SimClient,
    // Declared after the client: the server outlives every use of it.
    _server: Background,
}

impl std::ops::Deref for Sim {
    type Target = SimClient;
    fn deref(&self) -> &SimClient {
        &self.client
    }
}

impl Sim {
    /// Starts a simulator as `harvest-sim --port 0 <args>` would, and waits until it listens.
    pub fn start(args: &[&str]) -> Sim {
        let argv = ["harvest-sim", "--port", "0"]
            .into_iter()
            .chain(args.iter().copied());
        let config = SimConfig::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("harvest-sim flags {args:?}: {e}"));
        let server = Background::start(config)
            .unwrap_or_else(|e| panic!("harvest-sim {args:?} did not start: {e}"));
        Sim {
            client: SimClient::new(server.base_url()),
            _server: server,
        }
    }
}
