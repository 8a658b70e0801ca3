//! The state module against InMemory and LocalFileSystem: every test body runs on both backends
//! (InMemory exercises the etag `PutMode::Update` paths, LocalFileSystem the fallbacks).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use greenhouse_extract::state::{
    self, Clock, KEEP_GENERATIONS, Manifest, ManifestFile, ManifestStream, ManualClock, Slices,
    State, StateError, StateStore,
};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, local::LocalFileSystem, path::Path};

const TTL: Duration = Duration::from_secs(60);

/// Runs the async test body once per backend.
macro_rules! both_backends {
    ($name:ident, |$store:ident, $ss:ident| $body:block) => {
        both_backends!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] $name, |$store, $ss| $body);
    };
    (#[$test:meta] $name:ident, |$store:ident, $ss:ident| $body:block) => {
        mod $name {
            use super::*;
            async fn run($store: Arc<dyn ObjectStore>, $ss: StateStore) $body

            #[$test]
            async fn in_memory() {
                let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                run(store.clone(), StateStore::new(store, Path::from("dest/prefix"))).await;
            }

            #[$test]
            async fn local_fs() {
                let dir = tempfile::tempdir().unwrap();
                let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
                run(store.clone(), StateStore::new(store, Path::from("dest/prefix"))).await;
            }
        }
    };
}

async fn exists(store: &Arc<dyn ObjectStore>, key: &Path) -> bool {
    match store.head(key).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {key}: {e}"),
    }
}

async fn read(store: &Arc<dyn ObjectStore>, key: &Path) -> Vec<u8> {
    store
        .get(key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn ts(h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, h, 0, 0).unwrap()
}

both_backends!(empty_then_commit, |store, ss| {
    let s0 = ss.load().await.unwrap();
    assert_eq!(s0.generation, 0);
    assert!(s0.streams.is_empty());

    let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
    let mut next = s0.clone();
    let st = next.stream_mut("candidates");
    st.bookmark = Some(ts(3));
    st.rows = 10;
    st.files = 1;
    st.slices = Some(Slices::new(ts(4)));
    let s1 = ss.commit(&lease, next).await.unwrap();
    assert_eq!(s1.generation, 1);
    assert_eq!(s1.last_run_id.as_deref(), Some("run-a"));
    assert!(s1.updated_at.is_some());
    assert!(
        exists(
            &store,
            &Path::from("dest/prefix/_state/state-0000000001.json")
        )
        .await
    );

    let loaded = ss.load().await.unwrap();
    assert_eq!(loaded, s1);
    assert_eq!(loaded.bookmark("candidates"), Some(ts(3)));

    let s2 = ss.commit(&lease, loaded).await.unwrap();
    assert_eq!(s2.generation, 2);
    assert_eq!(ss.load().await.unwrap().generation, 2);
    lease.release().await;
});

both_backends!(racing_commits_one_wins, |store, ss| {
    let _ = store;
    let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
    let base = ss.load().await.unwrap();
    let (a, b) = tokio::join!(
        ss.commit(&lease, base.clone()),
        ss.commit(&lease, base.clone())
    );
    let oks = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
    assert_eq!(oks, 1, "{a:?} / {b:?}");
    let err = a.err().or(b.err()).unwrap();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");

    // A stale base (generation 0 while 1 exists) is refused; nothing is written.
    let err = ss.commit(&lease, base).await.unwrap_err();
    assert!(
        matches!(err, StateError::Conflict(ref m) if m.contains("generation 1 exists")),
        "{err}"
    );
    assert_eq!(ss.generations().await.unwrap(), vec![1]);
});

both_backends!(second_lease_conflicts_then_release, |store, ss| {
    let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
    let err = ss.acquire_lease("run-b", TTL).await.unwrap_err();
    let StateError::Conflict(msg) = &err else {
        panic!("{err}")
    };
    eprintln!("{msg}");
    assert!(msg.contains("run-a"), "{msg}");
    assert!(msg.contains("pid"), "{msg}");
    assert!(
        msg.contains("delete `dest/prefix/_state/lease.json`"),
        "{msg}"
    );
    assert_eq!(ss.read_lease().await.unwrap().unwrap().run_id, "run-a");

    lease.renew().await.unwrap();
    lease.release().await;
    assert!(!exists(&store, &ss.lease_key()).await);
    let b = ss.acquire_lease("run-b", TTL).await.unwrap();
    assert_eq!(b.run_id(), "run-b");
});

both_backends!(racing_acquires_one_wins, |store, ss| {
    for i in 0..10 {
        let (a, b) = (ss.clone(), ss.clone());
        let a = tokio::spawn(async move { a.acquire_lease(&format!("run-a{i}"), TTL).await });
        let b = tokio::spawn(async move { b.acquire_lease(&format!("run-b{i}"), TTL).await });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a.is_ok() != b.is_ok(), "{a:?} / {b:?}");
        a.or(b).unwrap().release().await;
        assert!(!exists(&store, &ss.lease_key()).await);
    }
});

// Both racers pass the "is there a newer generation?" check; the Create decides.
both_backends!(racing_commits_parallel, |store, ss| {
    let _ = store;
    let lease = Arc::new(ss.acquire_lease("run-a", TTL).await.unwrap());
    for round in 0..10u64 {
        let base = ss.load().await.unwrap();
        assert_eq!(base.generation, round);
        let mut handles = Vec::new();
        for _ in 0..2 {
            let (ss, lease, base) = (ss.clone(), lease.clone(), base.clone());
            handles.push(tokio::spawn(async move { ss.commit(&lease, base).await }));
        }
        let mut oks = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(s) => {
                    oks += 1;
                    assert_eq!(s.generation, round + 1);
                }
                Err(StateError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(oks, 1);
    }
});

both_backends!(expired_lease_taken_over, |store, ss| {
    let clock = Arc::new(ManualClock::new(ts(9)));
    let ss = ss.with_clock(clock.clone());
    let old = ss.acquire_lease("run-old", TTL).await.unwrap();
    // Live until its ttl has passed…
    clock.advance(TTL - Duration::from_secs(1));
    let err = ss.acquire_lease("run-new", TTL).await.unwrap_err();
    assert!(
        matches!(err, StateError::Conflict(ref m) if m.contains("run-old")),
        "{err}"
    );
    // …then taken over.
    clock.advance(Duration::from_secs(2));
    let new = ss.acquire_lease("run-new", TTL).await.unwrap();
    assert_eq!(ss.read_lease().await.unwrap().unwrap().run_id, "run-new");

    // The old run learns it lost the lease, and cannot commit.
    let err = old.renew().await.unwrap_err();
    assert!(
        matches!(err, StateError::Conflict(ref m) if m.contains("run-new")),
        "{err}"
    );
    assert!(old.lost());
    let err = ss.commit(&old, State::empty()).await.unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");
    assert_eq!(ss.generations().await.unwrap(), Vec::<u64>::new());

    // Releasing the old lease must not delete the new one.
    old.release().await;
    assert!(exists(&store, &ss.lease_key()).await);
    ss.commit(&new, State::empty()).await.unwrap();
    // No take-over claim markers are left behind.
    let left: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(&ss.state_dir())))
            .await
            .unwrap();
    let names: Vec<_> = left
        .iter()
        .map(|m| m.location.filename().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    new.release().await;
});

both_backends!(racing_takeovers_one_wins, |store, ss| {
    let _ = store;
    let clock = Arc::new(ManualClock::new(ts(9)));
    let ss = ss.with_clock(clock.clone());
    for i in 0..5 {
        let old = ss.acquire_lease(&format!("run-old{i}"), TTL).await.unwrap();
        drop(old);
        clock.advance(TTL + Duration::from_secs(1));
        let (a, b) = (ss.clone(), ss.clone());
        let a = tokio::spawn(async move { a.acquire_lease(&format!("run-a{i}"), TTL).await });
        let b = tokio::spawn(async move { b.acquire_lease(&format!("run-b{i}"), TTL).await });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a.is_ok() != b.is_ok(), "{a:?} / {b:?}");
        let loser = a.as_ref().err().or(b.as_ref().err()).unwrap();
        assert!(matches!(loser, StateError::Conflict(_)), "{loser}");
        let winner = a.as_ref().ok().or(b.as_ref().ok()).unwrap();
        assert_eq!(
            ss.read_lease().await.unwrap().unwrap().run_id,
            winner.run_id()
        );
        winner.renew().await.unwrap();
        a.ok().or(b.ok()).unwrap().release().await;
    }
});

/// Reads "now" from tokio's clock, so that with paused time (`start_paused`) the lease's
/// expiry and the heartbeat's timer move together, and only when the runtime is idle.
struct TokioClock {
    base: chrono::DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    fn new() -> Self {
        TokioClock {
            base: ts(9),
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.base + self.origin.elapsed()
    }
}

// Paused time: the 10 min "wait" (tokio auto-advances an idle runtime from timer to timer, and
// not while a LocalFileSystem call runs on the blocking pool) takes as long as its 20 renewals.
both_backends!(
    #[tokio::test(start_paused = true)]
    heartbeat_keeps_lease_alive,
    |store, ss| {
        let _ = store;
        let ss = ss.with_clock(Arc::new(TokioClock::new()));
        let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
        let hb = lease.spawn_heartbeat(TTL / 2);
        tokio::time::sleep(TTL * 10).await;
        let err = ss.acquire_lease("run-b", TTL).await.unwrap_err();
        assert!(
            matches!(err, StateError::Conflict(ref m) if m.contains("run-a")),
            "{err}"
        );
        assert!(!lease.lost());
        lease.release().await;
        tokio::time::timeout(Duration::from_secs(2), hb)
            .await
            .unwrap()
            .unwrap();
        assert!(ss.read_lease().await.unwrap().is_none());
    }
);

both_backends!(heartbeat_notices_takeover, |store, ss| {
    let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
    let mut lost = lease.watch_lost();
    let hb = lease.spawn_heartbeat(Duration::from_millis(30));
    // Someone deletes the lease by hand and another run starts.
    store.delete(&ss.lease_key()).await.unwrap();
    let _b = ss.acquire_lease("run-b", TTL).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), lost.wait_for(|r| r.is_some()))
        .await
        .unwrap()
        .unwrap();
    assert!(lease.lost_reason().unwrap().contains("run-b"));
    tokio::time::timeout(Duration::from_secs(2), hb)
        .await
        .unwrap()
        .unwrap();
});

both_backends!(corrupt_state_is_reported_not_overwritten, |store, ss| {
    let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
    let s1 = ss.commit(&lease, State::empty()).await.unwrap();
    let bad = ss.generation_key(2);
    store
        .put(
            &bad,
            PutPayload::from_static(b"{\"version\": 1, \"generation\": 2, \"streams\": ["),
        )
        .await
        .unwrap();
    let err = ss.load().await.unwrap_err();
    let StateError::Corrupt { key, detail } = &err else {
        panic!("{err}")
    };
    assert_eq!(key, "dest/prefix/_state/state-0000000002.json");
    assert!(detail.contains("state-0000000001.json"), "{detail}");
    assert!(err.to_string().contains("delete it"), "{err}");

    // A commit based on the last good generation does not overwrite the broken one.
    let err = ss.commit(&lease, s1).await.unwrap_err();
    assert!(matches!(err, StateError::Conflict(_)), "{err}");
    assert!(read(&store, &bad).await.ends_with(b"["));

    // Deleting the broken generation falls back to the previous one.
    store.delete(&bad).await.unwrap();
    assert_eq!(ss.load().await.unwrap().generation, 1);

    // Wrong generation number inside, and wrong shape: Corrupt too.
    store
        .put(
            &ss.generation_key(2),
            PutPayload::from_static(b"{\"version\": 1, \"generation\": 7}"),
        )
        .await
        .unwrap();
    assert!(matches!(
        ss.load().await.unwrap_err(),
        StateError::Corrupt { .. }
    ));
    store
        .put(
            &ss.generation_key(2),
            PutPayload::from_static(b"{\"version\": 1, \"generation\": 2, \"streams\": 5}"),
        )
        .await
        .unwrap();
    assert!(matches!(
        ss.load().await.unwrap_err(),
        StateError::Corrupt { .. }
    ));
    store
        .put(
            &ss.generation_key(2),
            PutPayload::from_static(b"{\"generation\": 2}"),
        )
        .await
        .unwrap();
    assert!(matches!(
        ss.load().await.unwrap_err(),
        StateError::Corrupt { .. }
    ));
});

both_backends!(future_version_is_incompatible, |store, ss| {
    store
        .put(
            &ss.generation_key(1),
            PutPayload::from_static(b"{\"version\": 2, \"generation\": 1, \"new_thing\": {}}"),
        )
        .await
        .unwrap();
    let err = ss.load().await.unwrap_err();
    let StateError::Incompatible(msg) = &err else {
        panic!("{err}")
    };
    assert!(
        msg.contains("version 2") && msg.contains("Upgrade"),
        "{msg}"
    );
});

both_backends!(old_generations_pruned, |store, ss| {
    let lease = ss.acquire_lease("run-a", TTL).await.unwrap();
    // Unrelated objects in _state/ are ignored by the generation listing.
    store
        .put(
            &ss.state_dir().join("notes.txt"),
            PutPayload::from_static(b"x"),
        )
        .await
        .unwrap();
    let mut s = ss.load().await.unwrap();
    let total = KEEP_GENERATIONS as u64 + 5;
    for _ in 0..total {
        s = ss.commit(&lease, s).await.unwrap();
    }
    let gens = ss.generations().await.unwrap();
    assert_eq!(gens.len(), KEEP_GENERATIONS);
    assert_eq!(*gens.last().unwrap(), total);
    assert_eq!(gens[0], total - KEEP_GENERATIONS as u64 + 1);
    assert_eq!(ss.load().await.unwrap().generation, total);
    assert!(exists(&store, &ss.state_dir().join("notes.txt")).await);
});

both_backends!(manifest_round_trip, |store, ss| {
    let mut m = Manifest::new("run-a", ts(1));
    m.finished_at = Some(ts(2));
    m.status = state::status::PARTIAL.to_string();
    m.streams.insert(
        "candidates".into(),
        ManifestStream {
            status: "success".into(),
            window_from: Some(ts(0)),
            window_to: Some(ts(1)),
            rows: 3,
            files: vec![ManifestFile {
                key: "dest/prefix/candidates/part-0.parquet".into(),
                rows: 3,
                bytes: 1234,
            }],
            requests: 2,
            pages: 1,
            slices: 0,
            bytes_fetched: 4096,
            error: None,
            quarantined: 1,
            error_objects: vec!["dest/prefix/_errors/candidates/run-a-0000.json".into()],
            deletes: Some(state::ManifestDeletes {
                reconciled: true,
                reconcile_requests: 4,
                tombstones: 3,
                by_reconcile: 1,
                by_cascade: 1,
                by_webhook: 1,
                refreshed: 0,
                error: None,
            }),
            current: Some(state::ManifestCurrent {
                commits: 1,
                upserted: 3,
                changed: 2,
                bytes_written: 900,
                ..Default::default()
            }),
        },
    );
    m.streams.insert(
        "offers".into(),
        ManifestStream {
            status: "failed".into(),
            error: Some("boom".into()),
            ..Default::default()
        },
    );
    let key = ss.write_manifest("run-a", &m).await.unwrap();
    assert_eq!(key, "dest/prefix/_runs/run-a/manifest.json");
    let raw: serde_json::Value =
        serde_json::from_slice(&read(&store, &Path::from(key.as_str())).await).unwrap();
    assert_eq!(raw["version"], 1);
    assert_eq!(raw["status"], "partial");
    assert_eq!(ss.read_manifest("run-a").await.unwrap().unwrap(), m);
    assert!(ss.read_manifest("run-zzz").await.unwrap().is_none());
    assert!(ss.write_manifest("../evil", &m).await.is_err());
});

#[test]
fn state_file_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    assert_eq!(state::load_file(&path).unwrap().generation, 0);

    let mut s = State::empty();
    s.generation = 4;
    s.last_run_id = Some("run-a".into());
    s.stream_mut("jobs").bookmark = Some(ts(5));
    state::save_file(&path, &s).unwrap();
    assert!(!dir.path().join("state.json.tmp").exists());
    assert_eq!(state::load_file(&path).unwrap(), s);

    std::fs::write(&path, b"not json").unwrap();
    let err = state::load_file(&path).unwrap_err();
    assert!(
        matches!(err, StateError::Corrupt { ref key, .. } if key.ends_with("state.json")),
        "{err}"
    );
    std::fs::write(&path, b"{\"version\": 9, \"generation\": 1}").unwrap();
    assert!(matches!(
        state::load_file(&path).unwrap_err(),
        StateError::Incompatible(_)
    ));
}

#[test]
fn errors_map_to_exit_codes() {
    use greenhouse_extract::error::ExitCode;
    assert_eq!(
        StateError::Conflict("x".into()).into_error().exit_code(),
        ExitCode::Conflict
    );
    assert_eq!(
        StateError::Corrupt {
            key: "k".into(),
            detail: "d".into()
        }
        .into_error()
        .exit_code(),
        ExitCode::Destination
    );
}
