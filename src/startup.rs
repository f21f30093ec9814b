//! Builds the HTTP application. `build` binds the listener before returning,
//! so a test can ask for port 0 and read the port it got.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use deadpool_postgres::Pool;

use crate::auth::Authenticator;
use crate::configuration::Settings;
use crate::routes::{self, body::BodyLimit};
use crate::sessions::{Registry, SessionWriter};
use crate::stats::Stats;
use crate::storage::RetryPolicy;
use crate::telemetry;

/// A bound, not yet running, HTTP server with its state.
pub struct Application {
    port: u16,
    server: Server,
    stats: Stats,
    registry: Registry,
}

impl Application {
    /// Binds `settings.server.bind` and wires the routes to `pool`. Must be
    /// called inside an actix system (session actors live there).
    pub fn build(settings: &Settings, pool: Pool) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let stats = Stats::default();
        let writer = SessionWriter::new(
            pool.clone(),
            RetryPolicy::from_settings(&settings.sessions),
            stats.clone(),
        );
        let registry = Registry::new(writer.clone(), stats.clone(), settings.sessions.clone());
        let authenticator = web::Data::new(Authenticator::new(pool, &settings.auth));
        let writer = web::Data::new(writer);
        let registry_data = web::Data::new(registry.clone());
        let limit = web::Data::new(BodyLimit(settings.server.max_body_bytes));
        let metrics = web::Data::new(telemetry::metrics_handle());

        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(authenticator.clone())
                .app_data(writer.clone())
                .app_data(registry_data.clone())
                .app_data(limit.clone())
                .app_data(metrics.clone())
                .route("/healthz", web::get().to(routes::health::healthz))
                .route("/readyz", web::get().to(routes::health::readyz))
                .route("/metrics", web::get().to(routes::metrics::metrics))
                .service(
                    web::resource("/api/email/sessions")
                        .route(web::post().to(routes::sessions::mint_session))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/api/email/sessions/{session_id}")
                        .route(web::get().to(routes::sessions::read_session))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .service(
                    web::resource("/api/email/update/{session_id}")
                        .route(web::put().to(routes::update::update_session))
                        .default_service(web::to(routes::method_not_allowed)),
                )
                .default_service(web::to(routes::not_found))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)
        .context("listening")?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            stats,
            registry,
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

    /// This instance's registry.
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// Serves until the server is stopped (by a signal or its handle).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
