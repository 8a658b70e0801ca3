//! Shared helper for the simulator's integration tests: each test talks to a real `harvest-sim`
//! process, because some of them are about the process itself (its first stdout line, its RSS,
//! its exit code on SIGTERM).
//!
//! `Sim::start(&[...])` spawns the built binary with `--port 0` plus the given flags, reads the
//! base URL from its first stdout line (20 s timeout) and kills the process on drop. Everything
//! else (tokens, pages, the `/_sim` control API) is [`harvest_sim::client::SimClient`], reached
//! through `Deref`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[allow(unused_imports)]
pub use harvest_sim::client::{Resp, SimClient, ids};

pub struct Sim {
    client: SimClient,
    child: Child,
}

impl std::ops::Deref for Sim {
    type Target = SimClient;
    fn deref(&self) -> &SimClient {
        &self.client
    }
}

impl Sim {
    /// Spawns `harvest-sim --port 0 <args>` and waits for its base URL.
    pub fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_harvest-sim"))
            .arg("--port")
            .arg("0")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn harvest-sim");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            let mut sink = String::new();
            while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("harvest-sim did not print its URL within 20 s");
            }
        };
        let base_url = line.trim().to_string();
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "unexpected first line: {base_url:?}"
        );
        Sim {
            client: SimClient::new(base_url),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
