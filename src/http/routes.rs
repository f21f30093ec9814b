//! Every route the service answers, in one table: `startup` builds the router from it and the
//! contract test checks that `/openapi.json` documents each entry, so a route cannot be added
//! without its documentation.

use actix_web::http::Method;
use actix_web::{Route, web};

use crate::http::{delete, health, list, metrics, mint, openapi, read, update};

/// One method on one path.
pub(crate) struct Endpoint {
    /// The path pattern, in the syntax actix and OpenAPI share (`/x/{id}`).
    pub(crate) path: &'static str,
    /// The method.
    pub(crate) method: Method,
    /// The handler, as an actix route for any method (`startup` adds the method guard).
    pub(crate) route: fn() -> Route,
}

/// The table.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    fn endpoint(path: &'static str, method: Method, route: fn() -> Route) -> Endpoint {
        Endpoint {
            path,
            method,
            route,
        }
    }
    // The plugin's PUT first: the router tries routes in this order, and each dynamic one it
    // tries on the way is a regex run (it showed in the profile of a duplicate burst).
    vec![
        endpoint("/api/email/update/{session_id}", Method::PUT, || {
            web::route().to(update::update_session)
        }),
        endpoint("/api/email/sessions", Method::POST, || {
            web::route().to(mint::mint_session)
        }),
        endpoint("/api/email/sessions", Method::GET, || {
            web::route().to(list::list_sessions)
        }),
        endpoint("/api/email/sessions/{session_id}", Method::GET, || {
            web::route().to(read::read_session)
        }),
        endpoint("/api/email/sessions/{session_id}", Method::DELETE, || {
            web::route().to(delete::delete_session)
        }),
        endpoint("/healthz", Method::GET, || web::route().to(health::healthz)),
        endpoint("/readyz", Method::GET, || web::route().to(health::readyz)),
        endpoint("/metrics", Method::GET, || {
            web::route().to(metrics::metrics)
        }),
        endpoint("/openapi.json", Method::GET, || {
            web::route().to(openapi::openapi_json)
        }),
        endpoint("/docs", Method::GET, || {
            web::route().to(openapi::docs_redirect)
        }),
        endpoint("/docs/{file:.*}", Method::GET, || {
            web::route().to(openapi::docs_file)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{file:.*}` (actix's regex segment) is `{file}` in OpenAPI.
    fn openapi_path(path: &str) -> String {
        path.replace(":.*}", "}")
    }

    #[test]
    fn every_route_is_in_the_contract() {
        let document = openapi::document();
        for endpoint in endpoints() {
            let path = openapi_path(endpoint.path);
            let item = document
                .paths
                .paths
                .get(&path)
                .unwrap_or_else(|| panic!("{path} is routed but not in /openapi.json"));
            let documented = match endpoint.method {
                Method::GET => item.get.is_some(),
                Method::POST => item.post.is_some(),
                Method::PUT => item.put.is_some(),
                Method::DELETE => item.delete.is_some(),
                ref other => panic!("{other} is not a method the contract test knows"),
            };
            assert!(
                documented,
                "{} {path} is routed but not documented",
                endpoint.method
            );
        }
    }

    #[test]
    fn every_documented_path_is_routed() {
        let routed: Vec<String> = endpoints().iter().map(|e| openapi_path(e.path)).collect();
        for path in openapi::document().paths.paths.keys() {
            assert!(routed.contains(path), "{path} is documented but not routed");
        }
    }
}
