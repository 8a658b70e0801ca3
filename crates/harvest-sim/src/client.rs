//! An HTTP client for a running simulator: tokens, pages, Link following and the `/_sim`
//! control API. Used by the extractor's and the simulator's tests and by tools that drive a
//! simulator; it panics with the response on anything unexpected, as a test wants.

use serde_json::Value;

/// Talks to the simulator at `base_url`.
pub struct SimClient {
    pub base_url: String,
    pub client: reqwest::Client,
}

/// One page: status, headers and raw body.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// The `rel="next"` URL of the Link header, if any.
    pub fn next_link(&self) -> Option<String> {
        let l = self.header("link")?;
        let start = l.find('<')? + 1;
        let end = l.find('>')?;
        Some(l[start..end].to_string())
    }
}

impl SimClient {
    pub fn new(base_url: impl Into<String>) -> SimClient {
        // A TLS feature unified in from the workspace makes reqwest ask for a process-wide
        // rustls provider even for plain http://.
        let _ = rustls::crypto::ring::default_provider().install_default();
        SimClient {
            base_url: base_url.into(),
            client: reqwest::Client::new(),
        }
    }

    /// POST /token with the default credentials (and an optional `sub`).
    pub async fn token_with(&self, id: &str, secret: &str, sub: Option<&str>) -> Resp {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = sub {
            form.push(("sub", s));
        }
        let r = self
            .client
            .post(format!("{}/token", self.base_url))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .expect("POST /token");
        to_resp(r).await
    }

    /// A valid access token for the default client.
    pub async fn token(&self) -> String {
        let r = self.token_with("sim-client", "sim-secret", None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// GET `path_and_query` (relative, e.g. `/v3/candidates?per_page=5`, or an absolute URL).
    pub async fn get(&self, token: Option<&str>, path: &str) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base_url, path)
        };
        let mut req = self.client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        to_resp(req.send().await.expect("GET")).await
    }

    /// Follows Link headers from `first` to the end; returns all records and the page count.
    pub async fn get_all(&self, token: &str, first: &str) -> (Vec<Value>, usize) {
        let mut out = Vec::new();
        let mut pages = 0;
        let mut next = Some(first.to_string());
        while let Some(url) = next {
            let r = self.get(Some(token), &url).await;
            assert_eq!(r.status, 200, "{url}: {}", r.body);
            out.extend(r.json().as_array().expect("array").iter().cloned());
            pages += 1;
            next = r.next_link();
        }
        (out, pages)
    }

    pub async fn post(&self, path: &str) -> Resp {
        let r = self
            .client
            .post(format!("{}{}", self.base_url, path))
            .send()
            .await
            .expect("POST");
        to_resp(r).await
    }

    /// `/_sim/truth/<resource>` parsed.
    pub async fn truth(&self, resource: &str) -> Vec<Value> {
        let r = self.get(None, &format!("/_sim/truth/{resource}")).await;
        assert_eq!(r.status, 200);
        r.body
            .lines()
            .map(|l| serde_json::from_str(l).expect("truth line"))
            .collect()
    }

    /// `/_sim/deleted/<resource>` ids.
    pub async fn deleted(&self, resource: &str) -> Vec<i64> {
        let r = self.get(None, &format!("/_sim/deleted/{resource}")).await;
        r.body
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }

    /// `GET /_sim/webhooks`: every webhook event with `event_id`, `action`, `attempts`,
    /// `delivered`, `last_status`, `body`, … (see the README).
    pub async fn webhooks(&self) -> Vec<Value> {
        let r = self.get(None, "/_sim/webhooks").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().cloned().unwrap_or_default()
    }

    /// `POST /_sim/webhooks/flush?timeout_ms=N`: waits until no delivery is in flight or due
    /// within the timeout, then returns the event list.
    pub async fn flush_webhooks(&self, timeout_ms: u64) -> Vec<Value> {
        let r = self
            .post(&format!("/_sim/webhooks/flush?timeout_ms={timeout_ms}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().cloned().unwrap_or_default()
    }

    pub async fn stats(&self) -> Value {
        self.get(None, "/_sim/stats").await.json()
    }
}

async fn to_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// Ids of a list of records.
pub fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["id"].as_i64().expect("id")).collect()
}
