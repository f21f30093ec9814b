//! The delivery loop of one instance: claim due events (as many as there are free places of
//! `webhooks.max_concurrency`), attempt each once, record how it ended, and look again.
//!
//! A claim is a lease: the event is not due again before `lease` has passed, so an instance that
//! dies mid-attempt loses its events to whoever looks after that, itself after a restart
//! included. The lease outlasts the longest attempt (the request timeout), so two instances never
//! attempt one event at once; a report that comes too late no longer matches the lease token and
//! changes nothing. A graceful stop stops claiming, lets the attempts in flight finish within
//! the shutdown timeout, and gives back the claims of those that did not. It runs on the thread
//! that built the application (attempts wait on the network, not on a CPU).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use standardwebhooks::Webhook;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::configuration::WebhookSettings;
use crate::metric_names as names;
use crate::storage::{AttemptEnd, ClaimedEvent, Store, loggable};
use crate::webhooks::{body, schedule, signing};

/// How often the backlog gauges are refreshed and old delivered events deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);
/// Delivered events deleted per housekeeping transaction.
const SWEEP_BATCH: i64 = 1000;

/// The handle of a running delivery loop.
pub struct Outbox {
    stop: CancellationToken,
    inner: Arc<Deliverer>,
    looping: tokio::task::JoinHandle<()>,
}

struct Deliverer {
    store: Store,
    http: reqwest::Client,
    key: Webhook,
    url: String,
    retry_delays: Vec<Duration>,
    poll_interval: Duration,
    keep_delivered_days: i32,
    lease: Duration,
    places: Arc<Semaphore>,
    /// The attempts in flight: their claim's lease token, and how to abort them.
    in_flight: DashMap<i64, (i64, AbortHandle)>,
    attempts: TaskTracker,
}

/// How one attempt went, as the endpoint answered.
enum Verdict {
    Delivered,
    /// 410: the endpoint does not want events any more.
    Gone,
    Failed {
        retry_after: Option<Duration>,
        error: String,
    },
}

impl Outbox {
    /// Starts delivering to `settings.url`, signing with `key`.
    pub fn start(store: Store, settings: &WebhookSettings, key: Webhook) -> anyhow::Result<Outbox> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            // A redirect is an answer, not a delivery: the endpoint is the configured URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let inner = Arc::new(Deliverer {
            store,
            http,
            key,
            url: settings.url.clone(),
            retry_delays: settings.retry_delays.clone(),
            poll_interval: settings.poll_interval,
            keep_delivered_days: i32::try_from(settings.keep_delivered_days).unwrap_or(i32::MAX),
            // Twice the longest attempt, so a slow attempt ends well before anyone else may
            // claim its event.
            lease: (settings.timeout * 2).max(Duration::from_secs(1)),
            places: Arc::new(Semaphore::new(settings.max_concurrency)),
            in_flight: DashMap::new(),
            attempts: TaskTracker::new(),
        });
        let stop = CancellationToken::new();
        let looping = actix_web::rt::spawn(inner.clone().run(stop.clone()));
        Ok(Outbox {
            stop,
            inner,
            looping,
        })
    }

    /// Stops claiming, waits up to `timeout` for the attempts in flight, and gives back the
    /// claims of those still running then.
    pub async fn stop(self, timeout: Duration) {
        self.stop.cancel();
        let _ = self.looping.await;
        self.inner.attempts.close();
        if tokio::time::timeout(timeout, self.inner.attempts.wait())
            .await
            .is_ok()
        {
            return;
        }
        let unfinished: Vec<(i64, i64, AbortHandle)> = self
            .inner
            .in_flight
            .iter()
            .map(|entry| (*entry.key(), entry.value().0, entry.value().1.clone()))
            .collect();
        tracing::warn!(
            claims = unfinished.len(),
            "webhook attempts still running at the shutdown timeout; giving their claims back"
        );
        for (id, lease_token, attempt) in unfinished {
            attempt.abort();
            if let Err(error) = self
                .inner
                .store
                .webhook_finish(id, lease_token, AttemptEnd::Released, None)
                .await
            {
                tracing::warn!(
                    event = id,
                    error = loggable(&anyhow::Error::new(error)),
                    "could not give a webhook claim back; its lease will end"
                );
            }
        }
    }
}

impl Deliverer {
    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut housekept = Instant::now()
            .checked_sub(HOUSEKEEPING_EVERY)
            .unwrap_or_else(Instant::now);
        while !stop.is_cancelled() {
            if housekept.elapsed() >= HOUSEKEEPING_EVERY {
                self.housekeeping().await;
                housekept = Instant::now();
            }
            let free = self.places.available_permits();
            if free == 0 {
                // Wait for a place rather than poll for one.
                tokio::select! {
                    place = self.places.acquire() => drop(place),
                    () = stop.cancelled() => break,
                }
                continue;
            }
            let claimed = self.claim(free).await;
            let all_taken = !claimed.is_empty() && claimed.len() == free;
            for event in claimed {
                self.clone().spawn_attempt(event);
            }
            if !all_taken {
                tokio::select! {
                    () = tokio::time::sleep(self.poll_interval) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
    }

    async fn claim(&self, limit: usize) -> Vec<ClaimedEvent> {
        let lease_token: i64 = rand::random();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match self
            .store
            .webhook_claim(limit, self.lease, lease_token)
            .await
        {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(
                    error = loggable(&anyhow::Error::new(error)),
                    "could not claim webhook events"
                );
                Vec::new()
            }
        }
    }

    fn spawn_attempt(self: Arc<Self>, event: ClaimedEvent) {
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            // Cannot happen (we claimed no more than the free places); the lease will end.
            return;
        };
        let (id, lease_token) = (event.id, event.lease_token);
        let me = self.clone();
        let handle = self.attempts.spawn_local(async move {
            me.attempt(event).await;
            me.in_flight.remove(&id);
            drop(place);
        });
        self.in_flight
            .insert(id, (lease_token, handle.abort_handle()));
    }

    async fn attempt(&self, event: ClaimedEvent) {
        let started = Instant::now();
        let verdict = self.send(&event).await;
        let outcome = match &verdict {
            Verdict::Delivered => "delivered",
            Verdict::Gone => "gone",
            Verdict::Failed { .. } => "failed",
        };
        metrics::counter!(names::WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
        metrics::histogram!(names::WEBHOOK_ATTEMPT_DURATION)
            .record(started.elapsed().as_secs_f64());
        let now = OffsetDateTime::now_utc();
        let (end, error) = match verdict {
            Verdict::Delivered => (AttemptEnd::Delivered, None),
            Verdict::Gone => {
                if let Err(error) = self
                    .store
                    .webhook_pause("the endpoint answered 410 Gone")
                    .await
                {
                    tracing::warn!(
                        error = loggable(&anyhow::Error::new(error)),
                        "could not pause webhook delivery"
                    );
                }
                tracing::warn!(
                    "the webhook endpoint answered 410 Gone: delivery is paused until `email-sessions webhook resume`"
                );
                (
                    AttemptEnd::Retry(now),
                    Some("410 Gone: delivery paused".to_owned()),
                )
            }
            Verdict::Failed { retry_after, error } => {
                match schedule::wait_after_failure(&self.retry_delays, event.attempt, retry_after) {
                    Some(wait) => (AttemptEnd::Retry(now + wait), Some(error)),
                    None => {
                        tracing::warn!(
                            event = event.id,
                            attempts = event.attempt,
                            "a webhook event is dead after its last attempt"
                        );
                        (AttemptEnd::Dead, Some(error))
                    }
                }
            }
        };
        match self
            .store
            .webhook_finish(event.id, event.lease_token, end, error.as_deref())
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                event = event.id,
                "a webhook attempt outlived its lease; the event's new claim stands"
            ),
            Err(error) => tracing::warn!(
                event = event.id,
                error = loggable(&anyhow::Error::new(error)),
                "could not record a webhook attempt; the event is attempted again when its lease ends"
            ),
        }
    }

    async fn send(&self, event: &ClaimedEvent) -> Verdict {
        let failed = |error: String| Verdict::Failed {
            retry_after: None,
            error,
        };
        let body = match body::render(event) {
            Ok(body) => body,
            Err(error) => return failed(format!("rendering the body: {error}")),
        };
        let id = format!("evt_{}", event.id);
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let headers = match signing::headers(&self.key, &id, timestamp, &body) {
            Ok(headers) => headers,
            Err(error) => return failed(format!("{error:#}")),
        };
        let mut request = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        match request.body(body).send().await {
            Err(error) => failed(describe_send_error(&error)),
            Ok(response) if response.status().is_success() => Verdict::Delivered,
            Ok(response) if response.status() == StatusCode::GONE => Verdict::Gone,
            Ok(response) => {
                let status = response.status();
                let retry_after = match status {
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                        retry_after(response.headers())
                    }
                    _ => None,
                };
                Verdict::Failed {
                    retry_after,
                    error: format!("answered {status}"),
                }
            }
        }
    }

    async fn housekeeping(&self) {
        match self.store.webhook_backlog().await {
            Ok((pending, oldest)) => {
                metrics::gauge!(names::WEBHOOK_PENDING).set(pending as f64);
                metrics::gauge!(names::WEBHOOK_OLDEST_PENDING_AGE).set(oldest);
            }
            Err(error) => tracing::debug!(
                error = loggable(&anyhow::Error::new(error)),
                "could not measure the webhook backlog"
            ),
        }
        if let Err(error) = self
            .store
            .webhook_sweep_delivered(self.keep_delivered_days, SWEEP_BATCH)
            .await
        {
            tracing::debug!(
                error = loggable(&anyhow::Error::new(error)),
                "could not delete old delivered webhook events"
            );
        }
    }
}

/// Why a request got no answer, without the URL (reqwest's own message includes it, and an
/// endpoint's URL may carry a token of the vendor's).
fn describe_send_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    Duration::try_from(at - OffsetDateTime::now_utc()).ok()
}
