//! A simulator on a thread of its own, with its own Tokio runtime, for callers that are not
//! async or whose runtime must not carry the simulator's load (tests that block on a child
//! process while the simulator serves it).
//!
//! Contract: [`Background::start`] returns once the listener is bound (the base URL is valid);
//! dropping the handle stops the server gracefully and joins the thread, so no simulator
//! outlives its handle.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::SimConfig;

/// A running simulator; stopped when dropped.
pub struct Background {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts a simulator with `config` (a port of 0 picks a free one).
    pub fn start(config: SimConfig) -> std::io::Result<Background> {
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("harvest-sim".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match crate::start(config).await {
                        Ok(sim) => {
                            let _ = ready_tx.send(Ok(sim.base_url().to_string()));
                            // Either an explicit stop or a dropped handle ends the server.
                            let _ = stop_rx.await;
                            sim.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let base_url = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the simulator thread ended before it started"))??;
        Ok(Background {
            base_url,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_until_dropped() {
        let sim = Background::start(SimConfig {
            scale: 0.01,
            ..SimConfig::default()
        })
        .unwrap();
        let addr = sim.base_url().trim_start_matches("http://").to_string();
        assert!(std::net::TcpStream::connect(&addr).is_ok());
        drop(sim);
        assert!(std::net::TcpStream::connect(&addr).is_err());
    }

    #[test]
    fn a_bad_config_is_an_error_not_a_hang() {
        let err = Background::start(SimConfig {
            scale: -1.0,
            ..SimConfig::default()
        })
        .err()
        .expect("refused");
        assert!(err.to_string().contains("--scale"), "{err}");
    }
}
