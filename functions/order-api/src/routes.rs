//! The route table: the one list of what the API answers. Dispatch, `template.yaml` and
//! `openapi.json` are checked against it.

pub use lambda_glue::http::routes::{NoRoute, RouteSpec};

/// Every route the function serves.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: "POST",
        path: "/orders",
    },
    RouteSpec {
        method: "GET",
        path: "/orders/{id}",
    },
    RouteSpec {
        method: "POST",
        path: "/orders/{id}/cancel",
    },
    RouteSpec {
        method: "GET",
        path: "/orders/{id}/events",
    },
    RouteSpec {
        method: "GET",
        path: "/customers/{id}/orders",
    },
];

/// A matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /orders`
    PlaceOrder,
    /// `GET /orders/{id}`
    GetOrder(String),
    /// `POST /orders/{id}/cancel`
    CancelOrder(String),
    /// `GET /orders/{id}/events`
    OrderEvents(String),
    /// `GET /customers/{id}/orders`
    CustomerOrders(String),
}

/// Matches a method and path (a trailing slash is ignored; segments are percent-decoded by the
/// caller's id parsers, which refuse anything but their own alphabet).
pub fn match_route(method: &str, path: &str) -> Result<Route, NoRoute> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let shape = match segments.as_slice() {
        ["orders"] => Some(("/orders", None)),
        ["orders", id] if !id.is_empty() => Some(("/orders/{id}", Some(*id))),
        ["orders", id, "cancel"] if !id.is_empty() => Some(("/orders/{id}/cancel", Some(*id))),
        ["orders", id, "events"] if !id.is_empty() => Some(("/orders/{id}/events", Some(*id))),
        ["customers", id, "orders"] if !id.is_empty() => {
            Some(("/customers/{id}/orders", Some(*id)))
        }
        _ => None,
    };
    let Some((template, id)) = shape else {
        return Err(NoRoute::NotFound);
    };
    let id = id.unwrap_or_default().to_owned();
    match (method, template) {
        ("POST", "/orders") => Ok(Route::PlaceOrder),
        ("GET", "/orders/{id}") => Ok(Route::GetOrder(id)),
        ("POST", "/orders/{id}/cancel") => Ok(Route::CancelOrder(id)),
        ("GET", "/orders/{id}/events") => Ok(Route::OrderEvents(id)),
        ("GET", "/customers/{id}/orders") => Ok(Route::CustomerOrders(id)),
        _ => Err(NoRoute::method_not_allowed(ROUTES, template)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use testkit::openapi_checks;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(include_str!("../openapi.json")).unwrap()
    }

    /// A concrete path for a template, with `x1` for every parameter.
    fn concrete(template: &str) -> String {
        template.replace("{id}", "x1")
    }

    #[test]
    fn every_listed_route_matches_itself() {
        for spec in ROUTES {
            assert!(
                match_route(spec.method, &concrete(spec.path)).is_ok(),
                "{} {} does not dispatch",
                spec.method,
                spec.path
            );
        }
    }

    #[test]
    fn parameters_are_taken_from_the_path() {
        assert_eq!(
            match_route("GET", "/orders/o-7"),
            Ok(Route::GetOrder("o-7".into()))
        );
        assert_eq!(
            match_route("POST", "/orders/o-7/cancel/"),
            Ok(Route::CancelOrder("o-7".into()))
        );
        assert_eq!(
            match_route("GET", "/customers/c-1/orders"),
            Ok(Route::CustomerOrders("c-1".into()))
        );
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_served() {
        openapi_checks::assert_describes_exactly(&document(), ROUTES);
    }

    #[test]
    fn every_operation_requires_a_cognito_access_token_with_the_scope() {
        openapi_checks::assert_every_operation_requires_the_scope(&document());
    }

    #[test]
    fn every_operation_says_who_may_call_it_and_documents_the_refusals() {
        openapi_checks::assert_every_operation_documents_callers_and_refusals(&document());
    }

    #[test]
    fn every_path_parameter_is_declared_with_an_anchored_pattern() {
        openapi_checks::assert_path_parameters_have_anchored_patterns(&document());
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_as_the_server_does() {
        let bodies = openapi_checks::assert_request_bodies_are_closed(&document());
        assert!(bodies > 0, "POST /orders takes a body");
    }

    #[test]
    fn unknown_paths_and_wrong_methods_are_told_apart() {
        assert_eq!(match_route("GET", "/nope"), Err(NoRoute::NotFound));
        assert_eq!(
            match_route("GET", "/orders//cancel"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            match_route("DELETE", "/orders/o-1"),
            Err(NoRoute::MethodNotAllowed(vec!["GET"]))
        );
        assert_eq!(
            match_route("GET", "/orders"),
            Err(NoRoute::MethodNotAllowed(vec!["POST"]))
        );
    }
}
