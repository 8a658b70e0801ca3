//! `POST /token`: the OAuth 2.0 client-credentials endpoint (standing in for
//! `auth.greenhouse.io/token`).
//!
//! Contract: HTTP Basic (or form) client id/secret must match the configuration (else 401
//! `invalid_client`); `grant_type` must be `client_credentials` (else 400
//! `unsupported_grant_type`); an optional numeric `sub` must name a live user (else 400
//! `invalid_request`) and decides whether the token acts as a Site Admin.  Token requests have
//! their own fixed-window limit (429 + `Retry-After`).  Tokens are JWT-shaped but opaque: only
//! the in-memory table decides validity and expiry.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use super::model::{self, R};
use super::rng::hash;
use super::shared::{Body, State, TokenInfo, json_resp, rate_headers};

pub(super) async fn token(state: &State, req: Request<Incoming>) -> Response<Body> {
    state
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .token_requests += 1;
    if req.method() != Method::POST {
        return json_resp(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "invalid_request", "error_description": "use POST"}),
        );
    }
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let body = match http_body_util::Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json_resp(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_request", "error_description": "unreadable body"}),
            );
        }
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let creds = basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let key = creds
        .as_ref()
        .map(|c| c.0.clone())
        .unwrap_or_else(|| "anonymous".into());
    let d = state
        .token_limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(&key, state.now_ms());
    if !d.allowed {
        let mut r = json_resp(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate_limited", "message": "Rate limit exceeded"}),
        );
        rate_headers(&mut r, &d, true);
        return r;
    }
    let cfg = &state.cfg;
    if creds.as_ref() != Some(&(cfg.client_id.clone(), cfg.client_secret.clone())) {
        let mut r = json_resp(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client", "error_description": "client authentication failed"}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"harvest-sim\""),
        );
        return r;
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_resp(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type", "error_description": "only client_credentials is supported"}),
        );
    }
    let site_admin = match form.get("sub") {
        None => true,
        Some(s) => {
            let db = state.db.read().unwrap_or_else(|e| e.into_inner());
            match s
                .parse::<i64>()
                .ok()
                .and_then(|id| model::idx_of(R::Users, id))
                .filter(|i| db.is_alive(R::Users, *i))
            {
                Some(i) => db.user_is_site_admin(i),
                None => {
                    return json_resp(
                        StatusCode::BAD_REQUEST,
                        &json!({"error": "invalid_request", "error_description": format!("unknown user id in sub: {s}")}),
                    );
                }
            }
        }
    };
    let now = state.now_ms();
    let exp = now + cfg.token_ttl as i64 * 1000;
    let n = state.minted.fetch_add(1, Ordering::Relaxed);
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "harvest-sim", "client_id": cfg.client_id, "sub": form.get("sub"), "exp": exp / 1000, "jti": n});
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = URL_SAFE_NO_PAD.encode(hash(&[state.secret, n, now as u64]).to_le_bytes());
    let tok = format!("{header}.{claims}.{sig}");
    state
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            tok.clone(),
            TokenInfo {
                client: cfg.client_id.clone(),
                site_admin,
                expires_ms: exp,
            },
        );
    json_resp(
        StatusCode::OK,
        &json!({"access_token": tok, "token_type": "Bearer", "expires_in": cfg.token_ttl, "expires_at": super::json::ts_string(exp)}),
    )
}
