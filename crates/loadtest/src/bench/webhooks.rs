//! The webhook figures of the benchmark, in the same run: what the outbox insert costs a
//! distinct write (the one-write-per-session scenario on an instance without webhooks, then at
//! once on one with them, its delivery paused so only the insert is measured), and how fast a
//! backlog of 100,000 events drains to a receiver on this machine once delivery resumes.
//!
//! The receiver answers 204 at once and only counts: what is measured is the service's side.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_postgres::NoTls;

use crate::burst::{self, BurstArgs};
use crate::instance::Instance;

/// Events waiting when delivery resumes: those of the burst, topped up to this.
pub const BACKLOG: i64 = 100_000;

/// What the section shows.
pub struct WebhookFigures {
    pub without_rate: f64,
    pub with_rate: f64,
    pub backlog: i64,
    pub drain_secs: f64,
    pub delivered: u64,
}

/// Runs the webhook part of the benchmark: `args` is the one-write-per-session burst (its
/// `urls` are replaced), `plain` the instance without webhooks.
pub async fn measure(
    binary: &Path,
    database: &tokio_postgres::Config,
    database_url: &str,
    plain: &Instance,
    args: &BurstArgs,
    tokens: Vec<String>,
    environment: &[(&str, &str)],
) -> anyhow::Result<WebhookFigures> {
    let (receiver, received) = start_receiver().await?;
    let secret = format!("whsec_{}", base64_of(&rand::random::<[u8; 32]>()));
    let url = format!("http://{receiver}/hooks");
    let mut with_webhooks: Vec<(&str, &str)> = environment.to_vec();
    with_webhooks.extend([
        ("APP_WEBHOOKS__URL", url.as_str()),
        ("APP_WEBHOOKS__SECRET", secret.as_str()),
    ]);
    let instance = Instance::start(binary, database_url, &with_webhooks).await?;
    let (client, connection) = database
        .connect(NoTls)
        .await
        .context("connecting to pause webhook delivery")?;
    tokio::spawn(connection);
    client
        .execute("UPDATE webhook_endpoint SET paused_at = now()", &[])
        .await?;

    let without = burst::run(&with_url(args, &plain.url), tokens.clone()).await?;
    let with = burst::run(&with_url(args, &instance.url), tokens).await?;
    anyhow::ensure!(
        without.passed() && with.passed(),
        "verification failed in the webhook scenarios"
    );

    // Top the burst's events up to the backlog, as sessions of their own (so each is due).
    let user_id: i64 = client
        .query_one("SELECT min(user_id) FROM webhook_events", &[])
        .await?
        .try_get::<_, Option<i64>>(0)?
        .context("the burst with webhooks recorded no events")?;
    client
        .execute(
            "INSERT INTO webhook_events (session_row_id, user_id, session_id, kind, version,
                                         subject, emails, names, session_created_at,
                                         session_updated_at, next_attempt_at)
             SELECT -g, $1, 'backlog-' || g, 'email_session.updated', 1, 'backlog',
                    ARRAY['b@bench.example'], ARRAY[NULL]::text[], now(), now(), now()
             FROM generate_series(1, $2 - (SELECT count(*) FROM webhook_events)) g",
            &[&user_id, &BACKLOG],
        )
        .await
        .context("filling the webhook backlog")?;
    let backlog: i64 = client
        .query_one("SELECT count(*) FROM webhook_events", &[])
        .await?
        .get(0);

    let started = Instant::now();
    client
        .execute("UPDATE webhook_endpoint SET paused_at = NULL", &[])
        .await?;
    let deadline = started + Duration::from_secs(900);
    loop {
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM webhook_events WHERE delivered_at IS NULL",
                &[],
            )
            .await?
            .get(0);
        if pending == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{pending} webhook events still pending after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_secs = started.elapsed().as_secs_f64();
    drop(instance);
    Ok(WebhookFigures {
        without_rate: without.burst.throughput_per_sec,
        with_rate: with.burst.throughput_per_sec,
        backlog,
        drain_secs,
        delivered: received.load(Ordering::Relaxed),
    })
}

fn with_url(args: &BurstArgs, url: &str) -> BurstArgs {
    BurstArgs {
        urls: vec![url.to_owned()],
        run_id: None,
        // Another instance: its CPU is not what these figures compare.
        service_pid: None,
        ..args.clone()
    }
}

/// Standard base64 of `bytes`, as a webhook secret writes its key.
fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A receiver on 127.0.0.1 that answers every request 204 and counts them.
async fn start_receiver() -> anyhow::Result<(SocketAddr, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    async {
                        Response::builder()
                            .status(StatusCode::NO_CONTENT)
                            .body(Empty::<Bytes>::new())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((address, received))
}
