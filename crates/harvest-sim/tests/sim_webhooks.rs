//! harvest-sim: `anonymizes=N` and signed Greenhouse-style webhooks for mutations, checked by
//! a real receiver on a socket that verifies each signature with its own HMAC.
mod support;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use clap::Parser;
use harvest_sim::SimConfig;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::Sim;

const SECRET: &str = "s3cr3t-key";

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Got {
    event_id: String,
    signature_ok: bool,
    content_type: String,
    user_agent: String,
    body: String,
}

/// A loopback receiver: answers 500 to the first attempt of the first event it sees, 200 to
/// everything else; records every request.
fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let log = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let n: usize = headers["content-length"].parse().unwrap();
            let mut body = vec![0; n];
            r.read_exact(&mut body).unwrap();
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(&body);
            let sig = headers.get("signature").cloned().unwrap_or_default();
            let hex = sig.strip_prefix("sha256 ").unwrap_or("");
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect();
            let g = Got {
                event_id: headers
                    .get("greenhouse-event-id")
                    .cloned()
                    .unwrap_or_default(),
                signature_ok: hex.len() == 64
                    && hex == hex.to_lowercase()
                    && mac.verify_slice(&bytes).is_ok(),
                content_type: headers.get("content-type").cloned().unwrap_or_default(),
                user_agent: headers.get("user-agent").cloned().unwrap_or_default(),
                body: String::from_utf8(body).unwrap(),
            };
            let status = {
                let mut log = log.lock().unwrap();
                let fail = log.is_empty();
                log.push(g);
                if fail {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn id_list(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_i64().unwrap()).collect())
        .unwrap_or_default()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[tokio::test]
async fn mutations_send_signed_retried_greenhouse_webhooks() {
    let (url, got) = receiver();
    let sim = Sim::start(&[
        "--scale",
        "0.1",
        "--rate-limit",
        "0",
        "--webhook-url",
        &url,
        "--webhook-secret",
        SECRET,
        "--webhook-retry-delays-ms",
        "300,300",
    ]);
    // One direct delete per resource: ten with a Greenhouse webhook, two without.
    let del = sim
        .post("/_sim/mutate?deletes=1&seed=2&resources=candidates,applications,offers,interviews,scorecards,jobs,departments,offices,job_posts,job_interview_stages,user_emails,tracking_links")
        .await;
    assert_eq!(del.status, 200, "{}", del.body);
    let del = del.json();
    let merge = sim
        .post("/_sim/mutate?merges=1&seed=3&resources=candidates")
        .await
        .json();
    let before = sim.truth("candidates").await;
    let anon = sim
        .post("/_sim/mutate?anonymizes=2&seed=4&resources=candidates")
        .await
        .json();
    let events = sim.flush_webhooks(15_000).await;

    // Every event delivered; exactly one needed a retry.
    assert_eq!(events.len(), 13, "{events:#?}");
    for e in &events {
        assert_eq!(e["delivered"], true, "{e}");
        assert_eq!(e["last_status"], 200, "{e}");
    }
    let retried: Vec<&Value> = events.iter().filter(|e| e["attempts"] == 2).collect();
    assert_eq!(retried.len(), 1, "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| e["attempts"] == 1 || e["attempts"] == 2)
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 14);
    assert!(got.iter().all(|g| g.signature_ok), "{got:#?}");
    assert!(got.iter().all(|g| g.content_type == "application/json"));
    assert!(
        got.iter()
            .all(|g| g.user_agent == "Greenhouse-Webhooks-Sim")
    );
    // The retry repeated the same event id and the same bytes.
    let first: Vec<&Got> = got
        .iter()
        .filter(|g| g.event_id == retried[0]["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].body, first[1].body);
    // Ids are unique per event; the receiver saw each event's logged body.
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), events.len());
    for e in &events {
        let g = got
            .iter()
            .find(|g| g.event_id == e["event_id"].as_str().unwrap())
            .unwrap();
        assert_eq!(g.body, e["body"].as_str().unwrap());
        assert!(g.body.is_ascii(), "body not escaped: {}", g.body);
    }

    // Event order and shapes.
    let bodies: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(e["body"].as_str().unwrap()).unwrap())
        .collect();
    let actions: Vec<&str> = bodies
        .iter()
        .map(|b| b["action"].as_str().unwrap())
        .collect();
    let mut by: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for b in &bodies {
        by.entry(b["action"].as_str().unwrap())
            .or_default()
            .push(&b["payload"]);
    }
    for a in [
        "delete_application",
        "delete_candidate",
        "department_deleted",
        "interview_deleted",
        "job_interview_stage_deleted",
        "job_post_deleted",
        "job_deleted",
        "offer_deleted",
        "office_deleted",
        "scorecard_deleted",
        "merge_candidate",
    ] {
        assert_eq!(by.get(a).map(Vec::len), Some(1), "{a}: {actions:?}");
    }
    assert_eq!(by["candidate_anonymized"].len(), 2);
    assert_eq!(
        &actions[10..],
        [
            "merge_candidate",
            "candidate_anonymized",
            "candidate_anonymized"
        ]
    );

    let person = &by["delete_candidate"][0]["person"];
    assert_eq!(
        keys(person),
        [
            "can_email",
            "company",
            "coordinator_user_id",
            "created_at",
            "deleted_application_ids",
            "first_name",
            "headline",
            "id",
            "is_private",
            "last_name",
            "recruiter_user_id",
            "title"
        ]
    );
    assert_eq!(
        id_list(&del["deleted"]["candidates"]),
        [person["id"].as_i64().unwrap()]
    );
    // The candidate's applications died with it: listed in its event, no event of their own.
    let dead_apps = id_list(&del["deleted"]["applications"]);
    let with_cand = id_list(&person["deleted_application_ids"]);
    assert!(with_cand.iter().all(|a| dead_apps.contains(a)));
    let app = &by["delete_application"][0]["application"];
    assert!(!with_cand.contains(&app["id"].as_i64().unwrap()));
    assert_eq!(dead_apps.len(), with_cand.len() + 1, "{del}");
    for k in [
        "candidate_id",
        "job_id",
        "created_at",
        "source_id",
        "rejected_at",
        "prospect",
    ] {
        assert!(app.get(k).is_some(), "application payload lacks {k}: {app}");
    }
    let offer = &by["offer_deleted"][0]["offer"];
    for k in [
        "id",
        "application_id",
        "job_id",
        "offer_status",
        "version",
        "sent_on",
    ] {
        assert!(offer.get(k).is_some(), "offer payload lacks {k}: {offer}");
    }
    assert_eq!(keys(&by["interview_deleted"][0]["interview"]), ["id"]);
    let sc = &by["scorecard_deleted"][0]["scorecard"];
    assert_eq!(
        keys(sc),
        [
            "candidate_id",
            "created_at",
            "id",
            "interviewed_at",
            "scorecard_status",
            "updated_at"
        ]
    );
    let job = &by["job_deleted"][0]["job"];
    assert_eq!(keys(job), ["id", "name"]);
    assert_eq!(
        id_list(&del["deleted"]["jobs"]),
        [job["id"].as_i64().unwrap()]
    );
    // The deleted job's posts and stages went with it, without events of their own.
    let post = &by["job_post_deleted"][0]["job_post"];
    assert_eq!(
        id_list(&del["soft_deleted"]["job_posts"]),
        [post["id"].as_i64().unwrap()]
    );
    assert!(post["job_id"].is_i64() && post["live"] == false);
    // Posts that died with the job fired nothing (the one event is the soft-deleted post).
    assert!(!id_list(&del["deleted"]["job_posts"]).is_empty());
    let stage = &by["job_interview_stage_deleted"][0]["job_interview_stage"];
    assert_eq!(
        keys(stage),
        ["active", "created_at", "id", "job_id", "name", "updated_at"]
    );
    assert!(!id_list(&del["deleted"]["job_interview_stages"]).is_empty());
    let dep = &by["department_deleted"][0]["department"];
    assert_eq!(
        keys(dep),
        ["child_ids", "external_id", "id", "name", "parent_id"]
    );
    assert!(dep["child_ids"].is_array());
    let off = &by["office_deleted"][0]["office"];
    assert_eq!(
        keys(off),
        [
            "child_ids",
            "external_id",
            "id",
            "location",
            "name",
            "parent_id"
        ]
    );
    assert!(off["location"].get("name").is_some());
    assert!(
        del["deleted"]["user_emails"].is_array() && del["deleted"]["tracking_links"].is_array()
    );

    // Merge: only merge_candidate, loser → winner.
    let m = &merge["merged"][0];
    let mp = &by["merge_candidate"][0]["person"];
    assert_eq!(mp["id"], m["loser"]);
    assert_eq!(mp["new_candidate_id"], m["winner"]);

    // Anonymize: rows blanked in place, updated_at unchanged, the event names the fields.
    let anon_ids = id_list(&anon["anonymized"]["candidates"]);
    assert_eq!(anon_ids.len(), 2);
    let after = sim.truth("candidates").await;
    for id in &anon_ids {
        let old = before.iter().find(|r| r["id"] == *id).unwrap();
        let new = after.iter().find(|r| r["id"] == *id).unwrap();
        assert_eq!(old["updated_at"], new["updated_at"]);
        assert_eq!(new["first_name"], "Anonymized");
        assert_eq!(new["last_name"], id.to_string());
        for k in [
            "email_addresses",
            "phone_numbers",
            "addresses",
            "website_addresses",
        ] {
            assert_eq!(new[k], Value::Array(vec![]), "{k}: {new}");
        }
        assert!(new["company"].is_null() && new["title"].is_null());
        for (_, f) in new["custom_fields"].as_object().unwrap() {
            assert!(f["value"].is_null(), "{new}");
        }
        assert_eq!(old["created_at"], new["created_at"]);
        assert_eq!(old["tags"], new["tags"]);
    }
    let anon_events: Vec<i64> = by["candidate_anonymized"]
        .iter()
        .map(|p| p["candidate_id"].as_i64().unwrap())
        .collect();
    assert_eq!(anon_events, anon_ids);
    assert!(
        by["candidate_anonymized"][0]["anonymized_fields"]
            .as_array()
            .unwrap()
            .contains(&Value::from("full_name"))
    );
    // The log endpoint answers the same list.
    assert_eq!(sim.webhooks().await.len(), 13);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_on_schedule_then_given_up() {
    // A port nobody listens on: every attempt is a connection error.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--webhook-url",
        &url,
        "--webhook-secret",
        SECRET,
        "--webhook-retry-delays-ms",
        "50,50,50",
    ]);
    sim.post("/_sim/mutate?deletes=1&resources=jobs").await;
    let events = sim.flush_webhooks(10_000).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["attempts"], 4, "{events:?}");
    assert_eq!(events[0]["delivered"], false);
    assert_eq!(events[0]["pending"], false);
    assert!(events[0]["last_status"].is_null());
}

#[tokio::test]
async fn without_a_url_nothing_is_queued() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let r = sim
        .post("/_sim/mutate?deletes=1&merges=1&anonymizes=1&resources=candidates")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["anonymized"]["candidates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(sim.webhooks().await.is_empty());
    assert!(sim.flush_webhooks(100).await.is_empty());
    assert_eq!(sim.post("/_sim/webhooks/flush?timeout=1").await.status, 422);
}

#[test]
fn url_and_secret_go_together() {
    assert!(SimConfig::try_parse_from(["harvest-sim", "--webhook-url", "http://x/"]).is_err());
    assert!(SimConfig::try_parse_from(["harvest-sim", "--webhook-secret", "k"]).is_err());
    let c = SimConfig::try_parse_from([
        "harvest-sim",
        "--webhook-url",
        "http://127.0.0.1:1/",
        "--webhook-secret",
        "hunter2",
    ])
    .unwrap();
    assert_eq!(
        c.webhook_retry_delays_ms,
        [1000, 2000, 4000, 8000, 16000, 32000]
    );
    assert!(!format!("{c:?}").contains("hunter2"));
}
