//! Firing requests: one shared HTTP client with a connection pool sized to
//! the concurrency, and a bounded stream that keeps exactly C requests in
//! flight, each on its own task so a multi-threaded runtime spreads them
//! across cores. The burst, the read-back and the ceiling all go through it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{StreamExt, stream};

use super::plan::Plan;
use super::progress::Progress;
use super::tally::{Ending, Exchange, LoadSummary, Tally};
use super::verify::SessionSnapshot;
use super::wire;

/// The client every phase shares: up to `connections` idle connections per
/// instance are kept, so C requests in flight reuse C connections instead of
/// reconnecting.
pub fn http_client(connections: usize, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(timeout)
        .build()
        .context("building the HTTP client")
}

/// Runs `job` on every item with at most `concurrency` in flight, calling
/// `on_done` as each finishes; results come back in finishing order.
pub async fn run_bounded<I, T, Job, Fut>(
    items: impl IntoIterator<Item = I>,
    concurrency: usize,
    mut job: Job,
    mut on_done: impl FnMut(&T),
) -> anyhow::Result<Vec<T>>
where
    Job: FnMut(I) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    // `buffer_unordered` pulls the next item (and so spawns its task) only
    // when one of the `concurrency` slots is free.
    let mut finished = stream::iter(items)
        .map(|item| tokio::spawn(job(item)))
        .buffer_unordered(concurrency);
    let mut results = Vec::new();
    while let Some(joined) = finished.next().await {
        let result = joined.context("a request task panicked")?;
        on_done(&result);
        results.push(result);
    }
    Ok(results)
}

/// Sends one request and reads the whole answer; `read` takes what the
/// caller needs from a 2xx body.
pub async fn exchange<T>(
    request: reqwest::RequestBuilder,
    read: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Exchange<T> {
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return Exchange {
                latency: None,
                ending: Ending::Lost {
                    message: describe(error),
                },
            };
        }
    };
    let status = response.status();
    let body = response.bytes().await;
    let latency = Some(started.elapsed());
    let ending = match body {
        Err(error) => Ending::Lost {
            message: format!("HTTP {status}, body unreadable: {}", describe(error)),
        },
        Ok(body) if status.is_success() => match read(&body) {
            Ok(value) => Ending::Success {
                status: status.as_u16(),
                value,
            },
            Err(message) => Ending::Lost {
                message: format!("HTTP {status}, {message}"),
            },
        },
        Ok(body) => Ending::Refused {
            status: status.as_u16(),
            message: wire::error_message(&body),
        },
    };
    Exchange { latency, ending }
}

/// reqwest's own message omits the cause ("error sending request"); the
/// chain says what actually happened (connection refused, timed out).
fn describe(error: reqwest::Error) -> String {
    format!("{:#}", anyhow::Error::from(error))
}

/// What the burst left behind for the report and the verification.
pub struct BurstOutcome {
    /// Throughput, latency and statuses of the PUTs.
    pub summary: LoadSummary,
    /// The sessions the PUTs were answered with, by index into [`Plan::sessions`].
    pub answered: Vec<Vec<SessionSnapshot>>,
}

/// Where and as whom the requests go.
pub struct Targets {
    /// The shared client.
    pub client: reqwest::Client,
    /// Base URLs, visited in turn.
    pub base_urls: Arc<[String]>,
    /// `tokens[u]` is user u's token.
    pub tokens: Arc<[String]>,
    /// Requests in flight.
    pub concurrency: usize,
    /// Whether a progress bar may be drawn.
    pub allow_bar: bool,
}

/// Fires every PUT of the plan, request `i` to base URL `i mod n`, so the
/// duplicates of one session spread over all instances.
pub async fn fire_burst(targets: &Targets, plan: &Plan) -> anyhow::Result<BurstOutcome> {
    let mut progress = Progress::start("burst", plan.requests.len(), targets.allow_bar);
    let started = Instant::now();
    let exchanges = run_bounded(
        plan.requests.iter().cloned().enumerate(),
        targets.concurrency,
        |(index, request)| {
            let session = &plan.sessions[request.session];
            let base_url = &targets.base_urls[index % targets.base_urls.len()];
            let put = targets
                .client
                .put(format!(
                    "{base_url}/api/email/update/{}",
                    session.session_id
                ))
                .bearer_auth(&targets.tokens[session.owner])
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(request.body);
            async move { (request.session, exchange(put, wire::session_snapshot).await) }
        },
        |(_, exchange)| progress.advance(exchange.succeeded()),
    )
    .await?;
    let elapsed = started.elapsed();
    progress.finish();

    let mut tally = Tally::default();
    let mut answered = vec![Vec::new(); plan.sessions.len()];
    for (session, exchange) in exchanges {
        tally.record(&exchange);
        if let Ending::Success { value, .. } = exchange.ending {
            answered[session].push(value);
        }
    }
    Ok(BurstOutcome {
        summary: tally.summarize(elapsed),
        answered,
    })
}

/// Fires `requests` GETs of `/healthz` the same way the burst fires PUTs:
/// the fastest this client and server exchange HTTP, with no session work.
pub async fn fire_ceiling(targets: &Targets, requests: usize) -> anyhow::Result<LoadSummary> {
    let mut progress = Progress::start("ceiling", requests, targets.allow_bar);
    let started = Instant::now();
    let exchanges = run_bounded(
        0..requests,
        targets.concurrency,
        |index| {
            let base_url = &targets.base_urls[index % targets.base_urls.len()];
            let get = targets.client.get(format!("{base_url}/healthz"));
            exchange(get, |_| Ok(()))
        },
        |exchange| progress.advance(exchange.succeeded()),
    )
    .await?;
    let elapsed = started.elapsed();
    progress.finish();
    let mut tally = Tally::default();
    for exchange in &exchanges {
        tally.record(exchange);
    }
    Ok(tally.summarize(elapsed))
}

/// Fails fast, with the reason, when an instance does not answer `/healthz`,
/// rather than reporting thousands of identical connection errors.
pub async fn check_reachable(client: &reqwest::Client, base_urls: &[String]) -> anyhow::Result<()> {
    for base_url in base_urls {
        let url = format!("{base_url}/healthz");
        client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("{url} does not answer; is the service running?"))?;
    }
    Ok(())
}

/// Fails fast when the service refuses a token (401), naming the user,
/// rather than firing a whole burst of 401s. The probe reads a session ID
/// no plan uses, so it costs one read and changes nothing.
pub async fn check_tokens(targets: &Targets, run_id: &str) -> anyhow::Result<()> {
    let base_url = &targets.base_urls[0];
    for (user, token) in targets.tokens.iter().enumerate() {
        let url = format!("{base_url}/api/email/sessions/{run_id}-token-check");
        let response = targets
            .client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("checking the token of user {user}"))?;
        let status = response.status();
        anyhow::ensure!(
            status != reqwest::StatusCode::UNAUTHORIZED,
            "the token of user {user} (--token #{}) is refused with 401",
            user + 1
        );
    }
    Ok(())
}
