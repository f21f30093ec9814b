//! Builds the HTTP application. `build` binds the listener before returning,
//! so a test can ask for port 0 and read the port it got, and a starting
//! instance can answer `/readyz` (503) while its migrations run.
//!
//! The server is assembled the way actix-web's `HttpServer` assembles it (an actix-server
//! listener, actix-http's HTTP/1 service, the app), with two things it has no place for:
//! each accepted connection goes through `http::connection` (bounded in number, every request
//! head bounded in time) and `Expect: 100-continue` through `http::expect`.

use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;
use actix_http::{HttpService, Request};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::{App, Resource, Route, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::auth::Authenticator;
use crate::configuration::Settings;
use crate::http::AllowedMethods;
use crate::http::body::BodyLimits;
use crate::http::client_address::TrustedProxies;
use crate::http::connection::{self, ConnectionLimits, door};
use crate::http::expect::ExpectGate;
use crate::http::middleware::{self, RouteLabel};
use crate::http::routes::endpoints;
use crate::http::{self, cors};
use crate::lifecycle::{Lifecycle, Phase};
use crate::retention;
use crate::serializer::Registry;
use crate::stats::Stats;
use crate::storage::{self, Store};
use crate::telemetry::{self, SessionRootSpan};
use crate::webhooks::{self, Outbox};

/// A bound, not yet running, HTTP server with its state.
pub struct Application {
    port: u16,
    server: Server,
    stats: Stats,
    registry: Registry,
    lifecycle: Lifecycle,
    /// The webhook delivery loop, when webhooks are on.
    outbox: Option<Outbox>,
    /// The thread of the session actors and the database connections; dropped last.
    _writers: WritersThread,
    shutdown_timeout: Duration,
    drain_grace: Duration,
    drain_readiness_grace: Duration,
    // A second handle on the listening socket, so draining can close the
    // door itself (actix only closes it after its workers have dropped the
    // connections they had accepted but not yet started).
    listener: TcpListener,
}

impl Application {
    /// Binds `settings.server.bind` and wires the routes to a pool on `database`, in
    /// phase `phase`. Must be called inside an actix system (session actors
    /// live there). Signals are left to the caller
    /// ([`Application::run_until_signal`]), so SIGINT drains like SIGTERM.
    pub fn build(
        settings: &Settings,
        database: &tokio_postgres::Config,
        phase: Phase,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let door = listener.try_clone().context("duplicating the listener")?;
        let stats = Stats::default();
        let lifecycle = Lifecycle::new(phase);
        // The session actors and the database connections share one thread: a write goes from
        // its actor to the socket and back without waking another.
        let writers = WritersThread(Arbiter::new());
        let store = Store::new(
            storage::connect_pool(
                database,
                settings.database.pool(),
                Some(runtime_of(&writers.0)?),
            )?,
            settings.sessions.retry_policy(),
            Arc::new(stats.clone()),
            settings.quotas.new_sessions_per_day,
            settings.webhooks.enabled(),
        );
        let outbox = match &settings.webhooks.secret {
            Some(secret) if settings.webhooks.enabled() => Some(Outbox::start(
                store.clone(),
                &settings.webhooks,
                webhooks::signing_key(secret).context("webhooks.secret")?,
            )?),
            _ => None,
        };
        let registry = Registry::new(
            store.clone(),
            stats.clone(),
            settings.sessions.clone(),
            writers.0.handle(),
        );
        // Lives as long as the actix system: the process (or the test) that built us.
        actix_web::rt::spawn(retention::sweep_forever(
            store.clone(),
            stats.clone(),
            settings.retention.clone(),
        ));
        let authenticator = web::Data::new(Authenticator::new(
            store.clone(),
            stats.clone(),
            &settings.auth,
        )?);
        let store = web::Data::new(store);
        let registry_data = web::Data::new(registry.clone());
        let limit = web::Data::new(BodyLimits {
            max_bytes: settings.server.max_body_bytes,
            read_timeout: settings.server.body_read_timeout,
        });
        let metrics = web::Data::new(telemetry::metrics_handle());
        let lifecycle_data = web::Data::new(lifecycle.clone());
        let cors_settings = settings.cors.clone();
        let trusted_proxies = web::Data::new(
            TrustedProxies::parse(&settings.server.trusted_proxies)
                .context("server.trusted_proxies")?,
        );
        let trusted_proxies_for_limits = trusted_proxies.clone();
        let expect_authenticator = authenticator.clone();
        let expect_proxies = trusted_proxies.clone();
        let metrics_only = (
            metrics.clone(),
            registry_data.clone(),
            store.clone(),
            lifecycle_data.clone(),
        );
        let metrics_listener = match settings.server.metrics_bind {
            None => None,
            Some(address) => {
                Some(TcpListener::bind(address).with_context(|| format!("binding {address}"))?)
            }
        };

        let metrics_apart = settings.server.metrics_bind.is_some();
        let app = move || {
            let app = App::new()
                .wrap(from_fn(middleware::api_gate))
                // Outside the gate, so a starting instance's 503 is readable cross-origin too.
                .wrap(cors::cors(&cors_settings))
                .wrap(from_fn(middleware::http_metrics))
                .wrap(TracingLogger::<SessionRootSpan>::new())
                .app_data(authenticator.clone())
                .app_data(store.clone())
                .app_data(registry_data.clone())
                .app_data(limit.clone())
                .app_data(metrics.clone())
                .app_data(lifecycle_data.clone())
                .app_data(trusted_proxies.clone());
            resources(metrics_apart)
                .fold(app, |app, resource| app.service(resource))
                .default_service(web::to(http::not_found))
        };
        let limits = Arc::new(ConnectionLimits::new(
            settings.server.max_connections,
            settings.server.max_connections_per_address,
            (**trusted_proxies_for_limits).clone(),
        ));
        let head_timeout = settings.server.request_head_timeout;
        let max_body_bytes = settings.server.max_body_bytes;
        let mut builder = actix_server::Server::build()
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout.as_secs());
        if settings.server.workers > 0 {
            builder = builder.workers(settings.server.workers);
        }
        let shutdown_signal = builder.graceful_shutdown_signal();
        let local_addr = listener.local_addr().context("reading the bound address")?;
        let builder = builder
            .listen("api", listener, move || {
                let limits = limits.clone();
                let gate = Rc::new(ExpectGate {
                    authenticator: (**expect_authenticator).clone(),
                    trusted_proxies: (**expect_proxies).clone(),
                    max_body_bytes,
                });
                let shutdown_signal = shutdown_signal.clone();
                let http = HttpService::build()
                    // What HttpServer gives its connections: a graceful stop closes idle
                    // keep-alive connections at once instead of waiting out their timers.
                    .graceful_shutdown_signal(move || {
                        let signal = shutdown_signal.clone();
                        async move { signal.notified().await }
                    })
                    .client_request_timeout(head_timeout)
                    .local_addr(local_addr)
                    .expect(fn_service(move |request: Request| {
                        gate.clone().check(request)
                    }))
                    .h1(map_config(
                        app().into_factory().map_err(|error| error.error_response()),
                        |_| AppConfig::default(),
                    ));
                fn_service(move |stream: TcpStream| {
                    let limits = limits.clone();
                    async move {
                        connection::admit(stream, &limits, head_timeout)
                            .await
                            .map_err(actix_http::error::DispatchError::Io)
                    }
                })
                .and_then(http)
            })
            .context("listening")?;
        let builder = match &metrics_listener {
            None => builder,
            Some(metrics_listener) => builder
                .listen(
                    "metrics",
                    metrics_listener
                        .try_clone()
                        .context("duplicating the metrics listener")?,
                    move || {
                        let app = App::new()
                            .app_data(metrics_only.0.clone())
                            .app_data(metrics_only.1.clone())
                            .app_data(metrics_only.2.clone())
                            .app_data(metrics_only.3.clone())
                            .route("/metrics", web::get().to(http::metrics::metrics));
                        HttpService::build()
                            .client_request_timeout(head_timeout)
                            .h1(map_config(
                                app.into_factory().map_err(|error| error.error_response()),
                                |_| AppConfig::default(),
                            ))
                            .tcp()
                    },
                )
                .context("listening for /metrics")?,
        };
        let server = builder;
        Ok(Application {
            port,
            server: server.run(),
            stats,
            registry,
            lifecycle,
            outbox,
            _writers: writers,
            shutdown_timeout: settings.server.shutdown_timeout,
            drain_grace: settings.server.drain_grace,
            drain_readiness_grace: settings.server.drain_readiness_grace,
            listener: door,
        })
    }

    /// The port the listener got.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// This instance's serializer counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// This instance's phase, to flip once migrations are done.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle.clone()
    }

    /// Serves until the server is stopped by other means (tests).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until SIGTERM or SIGINT, then drains: readiness turns 503 while
    /// the instance still serves for `drain_readiness_grace` (so a load
    /// balancer takes it out of rotation first), the
    /// listener closes (new connections are refused; those the kernel already
    /// completed are accepted first, see [`door`]), connections already
    /// accepted are given `drain_grace` to reach a worker, requests in
    /// flight are answered (within the shutdown timeout), batches still
    /// being written finish, webhook attempts in flight finish or give their
    /// claims back, and the session actors stop with the database connections'
    /// thread.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = actix_web::rt::spawn(self.server);
        let signal = wait_for_stop_signal().await?;
        tracing::info!(signal, "draining");
        self.lifecycle.enter(Phase::Draining);
        // Still serving: whoever routes to us learns from /readyz before the door closes.
        tokio::time::sleep(self.drain_readiness_grace).await;
        // Closed while actix's accept thread is still alive to take what the kernel let in.
        match door::close(&self.listener, self.drain_grace).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("connections still waiting to be accepted were reset"),
            Err(error) => tracing::warn!(%error, "could not close the listener early"),
        }
        tokio::time::sleep(self.drain_grace).await;
        handle.stop(true).await;
        server
            .await
            .context("joining the HTTP server")?
            .context("serving HTTP")?;
        if !self.registry.drain(self.shutdown_timeout).await {
            tracing::warn!("shutdown timeout reached with batches still being written");
        }
        if let Some(outbox) = self.outbox {
            outbox.stop(self.shutdown_timeout).await;
        }
        tracing::info!("drained");
        Ok(())
    }
}

/// The session actors' arbiter, stopped when the application is dropped: after the drain and the
/// outbox's last statements (which run on connections this thread drives), or when a test's
/// application goes, whose actors and connections would otherwise outlive it.
struct WritersThread(Arbiter);

impl Drop for WritersThread {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The tokio runtime `arbiter`'s thread runs.
fn runtime_of(arbiter: &Arbiter) -> anyhow::Result<tokio::runtime::Handle> {
    let (sender, receiver) = std::sync::mpsc::channel();
    arbiter.spawn(async move {
        let _ = sender.send(tokio::runtime::Handle::current());
    });
    receiver
        .recv()
        .context("the session actors' arbiter did not start")
}

/// One resource per path of the route table (but `/metrics` when it has a listener of its own),
/// with that path's methods; every GET also answers HEAD (the same handler; actix sends the
/// headers without the body).
fn resources(metrics_apart: bool) -> impl Iterator<Item = Resource> {
    let mut by_path: Vec<(&'static str, Vec<Method>, Vec<Route>)> = Vec::new();
    let served_here = endpoints()
        .into_iter()
        .filter(|endpoint| !(metrics_apart && endpoint.path == "/metrics"));
    for endpoint in served_here {
        let index = match by_path.iter().position(|(path, ..)| *path == endpoint.path) {
            Some(index) => index,
            None => {
                by_path.push((endpoint.path, Vec::new(), Vec::new()));
                by_path.len() - 1
            }
        };
        let (_, methods, routes) = &mut by_path[index];
        let mut add = |method: Method| {
            routes.push((endpoint.route)().method(method.clone()));
            methods.push(method);
        };
        add(endpoint.method.clone());
        if endpoint.method == Method::GET {
            add(Method::HEAD);
        }
    }
    by_path.into_iter().map(|(path, methods, routes)| {
        routes
            .into_iter()
            .fold(resource(path, &methods), Resource::route)
    })
}

/// A resource that names its route for metrics and logs, and answers a
/// wrong method with the JSON 405 and `Allow: <methods>`.
fn resource(path: &'static str, methods: &[Method]) -> Resource {
    let allowed = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    web::resource(path)
        .app_data(RouteLabel(path))
        .app_data(AllowedMethods(allowed))
        .default_service(web::to(http::method_not_allowed))
}

async fn wait_for_stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
