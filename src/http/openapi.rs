//! The API contract, generated from the handlers' annotations (utoipa), served as OpenAPI 3.1
//! at `GET /openapi.json`, and shown to people at `GET /docs` with Swagger UI, whose scripts
//! and styles are compiled into the binary (no CDN: many plugin developers' networks reach
//! none).

use std::sync::{Arc, OnceLock};

use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::http::body::{FormUpdate, JsonRecipients, JsonUpdate};
use crate::http::health::Probe;
use crate::http::list::SessionPageJson;
use crate::http::session_json::{RecipientJson, SessionJson};
use crate::http::{delete, health, list, metrics, mint, read, update};

/// Where the document is served; Swagger UI loads it from here.
const DOCUMENT_PATH: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "email-sessions",
        description = "Sessions of a web email plugin: mint a session ID while composing, report \
            its recipients and subject after sending (as often as the plugin likes: duplicates \
            collapse), read it back. ETag = version; If-Match / If-None-Match make writes \
            conditional. Errors are `{\"error\": {\"code\", \"message\"}}`; every 503 carries \
            Retry-After; every answer carries X-Request-Id."
    ),
    paths(
        mint::mint_session,
        list::list_sessions,
        read::read_session,
        delete::delete_session,
        update::update_session,
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi_json,
        docs_redirect,
        docs_file,
    ),
    components(schemas(
        SessionJson, SessionPageJson, RecipientJson, FormUpdate, JsonUpdate, JsonRecipients, ErrorBody,
        ErrorDetail, ErrorCode, Probe
    )),
    modifiers(&ContractDetails),
    tags(
        (name = "sessions", description = "The plugin's API (bearer token)"),
        (name = "operations", description = "Probes, metrics and this contract"),
    ),
)]
struct ApiDoc;

/// Declares the `bearer` scheme the session endpoints name, and drops the empty license utoipa
/// copies from Cargo.toml (the package is not published).
struct ContractDetails;

impl Modify for ContractDetails {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.license = None;
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`<token id>.<secret>`, from `email-sessions token \
                         create`), or an identity token (a JWT signed with RS256 or ES256) of \
                         an issuer in `[[auth.oidc]]`, whose `aud` holds the configured \
                         audience. A token that fails a check gets 401 `invalid_token`, its \
                         message naming the check.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
pub(crate) fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")),
)]
pub(crate) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// `GET /docs`: the page lives at `/docs/`, whose relative links find its assets.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 308, description = "To `/docs/`", headers(("Location" = String)))),
)]
pub(crate) async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((LOCATION, "/docs/"))
        .finish()
}

/// `GET /docs/{file}`: Swagger UI and its assets, from the binary.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "operations",
    params(("file" = String, Path, description = "empty for the page, else one of its assets")),
    responses(
        (status = 200, description = "The page (text/html) or an asset", content_type = "text/html"),
        (status = 404, description = "No such asset"),
    ),
)]
pub(crate) async fn docs_file(file: web::Path<String>) -> HttpResponse {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from(DOCUMENT_PATH)))
        .clone();
    match utoipa_swagger_ui::serve(&file, config) {
        Ok(Some(asset)) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((CACHE_CONTROL, "no-cache"))
            .body(asset.bytes.into_owned()),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(error) => {
            tracing::error!(error = %error, "serving the docs page failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
