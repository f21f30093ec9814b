//! A webhook receiver on localhost for the tests, as a plugin vendor's backend would run one: it
//! verifies every delivery's signature with the `standardwebhooks` crate, records it, and can be
//! told to fail some attempts, to answer a given status, or to go away (connections refused)
//! and come back on the same port.

use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use standardwebhooks::Webhook;

/// One delivery attempt as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub body: Value,
    /// Whether the signature verified with the shared secret.
    pub verified: bool,
    /// Whether the receiver answered 2xx.
    pub accepted: bool,
    pub at: std::time::Instant,
}

impl Delivery {
    pub fn session_id(&self) -> &str {
        self.body["data"]["session_id"].as_str().unwrap_or_default()
    }

    pub fn version(&self) -> i64 {
        self.body["data"]["version"].as_i64().unwrap_or(-1)
    }
}

/// What the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Accept,
    /// Every `n`-th attempt gets a 500; the others 204.
    FailEvery(u64),
    /// Always this status.
    Status(u16),
    /// Takes the request and never answers (until the sender gives up).
    Stall,
    /// 500 for this session's events, 204 for the others'.
    FailSession(&'static str),
    /// 503 with `Retry-After` of this many seconds.
    Unavailable {
        retry_after_secs: u64,
    },
}

struct State {
    key: Webhook,
    answer: Mutex<Answer>,
    attempts: AtomicU64,
    deliveries: Mutex<Vec<Delivery>>,
}

pub struct TestReceiver {
    /// `http://127.0.0.1:<port>/hooks`.
    pub url: String,
    /// The shared secret, `whsec_...`.
    pub secret: String,
    address: SocketAddr,
    state: web::Data<State>,
    server: Mutex<Option<ServerHandle>>,
}

impl TestReceiver {
    pub async fn start(answer: Answer) -> TestReceiver {
        let secret = format!("whsec_{}", STANDARD.encode(rand::random::<[u8; 32]>()));
        let state = web::Data::new(State {
            key: Webhook::new(&secret).unwrap(),
            answer: Mutex::new(answer),
            attempts: AtomicU64::new(0),
            deliveries: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the receiver");
        let address = listener.local_addr().unwrap();
        let receiver = TestReceiver {
            url: format!("http://{address}/hooks"),
            secret,
            address,
            state,
            server: Mutex::new(None),
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/hooks", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listening")
        .run();
        *self.server.lock().unwrap() = Some(server.handle());
        actix_web::rt::spawn(server);
    }

    /// Settings that deliver here, retrying after `delays_ms`.
    pub fn configure(&self, settings: &mut email_sessions::Settings, delays_ms: &[u64]) {
        settings.webhooks.url = self.url.clone();
        settings.webhooks.secret = Some(self.secret.clone().into());
        settings.webhooks.retry_delays = delays_ms
            .iter()
            .map(|&ms| std::time::Duration::from_millis(ms))
            .collect();
        settings.webhooks.poll_interval = std::time::Duration::from_millis(50);
        settings.webhooks.timeout = std::time::Duration::from_secs(2);
    }

    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// Stops listening: connections are refused until `restart`.
    pub async fn stop(&self) {
        let handle = self.server.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Listens again on the same port.
    pub fn restart(&self) {
        let listener = TcpListener::bind(self.address).expect("binding the receiver again");
        self.serve(listener);
    }

    /// Every attempt so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().unwrap().clone()
    }

    /// The accepted deliveries, in arrival order.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|delivery| delivery.accepted)
            .collect()
    }

    /// Waits (up to `seconds`) until `done` holds for the accepted deliveries.
    pub async fn wait_for(&self, seconds: u64, done: impl Fn(&[Delivery]) -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while std::time::Instant::now() < deadline {
            if done(&self.accepted()) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        done(&self.accepted())
    }
}

async fn receive(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers() {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let verified = state.key.verify(&body, &headers).is_ok();
    let attempt = state.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    let answer = *state.answer.lock().unwrap();
    if let Answer::Stall = answer {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let status = match answer {
        Answer::Accept | Answer::Stall => 204,
        Answer::FailSession(session) if body_json["data"]["session_id"] == session => 500,
        Answer::FailSession(_) => 204,
        Answer::Unavailable { .. } => 503,
        Answer::FailEvery(n) if attempt.is_multiple_of(n) => 500,
        Answer::FailEvery(_) => 204,
        Answer::Status(status) => status,
    };
    let accepted = verified && (200..300).contains(&status);
    state.deliveries.lock().unwrap().push(Delivery {
        id: request
            .headers()
            .get("webhook-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body_json,
        verified,
        accepted,
        at: std::time::Instant::now(),
    });
    if !verified {
        return HttpResponse::Unauthorized().finish();
    }
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Answer::Unavailable { retry_after_secs } = answer {
        response.insert_header(("Retry-After", retry_after_secs.to_string()));
    }
    response.finish()
}
