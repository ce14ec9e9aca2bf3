//! The route table: the one list of what the API answers. Dispatch, `template.yaml` and
//! `openapi.json` are checked against it.

pub use shared::http::routes::{NoRoute, RouteSpec};

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
    use shared::http::caller::Group;

    use super::*;

    /// The scope API Gateway's JWT authorizer requires on every route (`template.yaml`).
    const SCOPE: &str = "aws.cognito.signin.user.admin";

    fn document() -> Value {
        serde_json::from_str(include_str!("../openapi.json")).unwrap()
    }

    /// `value`, or what its local `$ref` (`#/components/...`) points at.
    fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("a local $ref");
                let target = document.pointer(pointer);
                resolve(
                    document,
                    target.unwrap_or_else(|| panic!("{reference} resolves")),
                )
            }
            None => value,
        }
    }

    /// Every operation of the document: (method, path template, operation).
    fn operations(document: &Value) -> Vec<(String, String, &Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    found.push((method.to_uppercase(), path.clone(), operation));
                }
            }
        }
        assert!(!found.is_empty(), "openapi.json documents no operation");
        found
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
        let document: serde_json::Value =
            serde_json::from_str(include_str!("../openapi.json")).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents no responses"
                );
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        served.sort();
        assert_eq!(documented, served, "openapi.json and ROUTES disagree");
    }

    #[test]
    fn every_operation_requires_a_cognito_access_token_with_the_scope() {
        let document = document();
        let schemes = &document["components"]["securitySchemes"];
        for (method, path, operation) in operations(&document) {
            let requirements = operation
                .get("security")
                .unwrap_or(&document["security"])
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: no security requirement"));
            assert!(!requirements.is_empty(), "{method} {path}: no security");
            for requirement in requirements {
                let requirement = requirement.as_object().unwrap();
                // `{}` would let a caller in without a token.
                assert!(!requirement.is_empty(), "{method} {path}: anonymous access");
                for (scheme, scopes) in requirement {
                    // OpenAPI 3.0 gives scopes a meaning only for these two kinds of scheme.
                    let kind = schemes[scheme]["type"].as_str();
                    assert!(
                        matches!(kind, Some("openIdConnect" | "oauth2")),
                        "{method} {path}: scheme {scheme} is {kind:?}"
                    );
                    assert!(
                        scopes.as_array().unwrap().contains(&Value::from(SCOPE)),
                        "{method} {path}: {scheme} does not require {SCOPE}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_operation_says_who_may_call_it_and_documents_the_refusals() {
        let document = document();
        for (method, path, operation) in operations(&document) {
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("**Who may call:**")
                    && Group::ALL
                        .iter()
                        .any(|group| description.contains(&format!("`{group}`"))),
                "{method} {path}: the description names no group"
            );
            let responses = &operation["responses"];
            let mut expected = vec!["400", "401", "403", "503"];
            if path.contains("{id}") {
                expected.push("404");
            }
            for status in expected {
                assert!(
                    responses.get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
            for (status, response) in responses.as_object().unwrap() {
                let content = resolve(&document, response)["content"].as_object();
                assert!(
                    content.is_some_and(|c| !c.is_empty()),
                    "{method} {path} {status}: no body schema"
                );
            }
        }
    }

    #[test]
    fn every_path_parameter_is_declared_with_an_anchored_pattern() {
        let document = document();
        for (method, path, operation) in operations(&document) {
            let parameters: Vec<&Value> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(&document, p))
                .filter(|p| p["in"] == "path")
                .collect();
            let named: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let declared: Vec<&str> = parameters
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(declared, named, "{method} {path}: path parameters");
            for parameter in parameters {
                let pattern = resolve(&document, &parameter["schema"])["pattern"].as_str();
                assert!(
                    pattern.is_some_and(|p| p.starts_with('^') && p.ends_with('$')),
                    "{method} {path}: {} has no anchored pattern",
                    parameter["name"]
                );
            }
        }
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_as_the_server_does() {
        let document = document();
        let mut bodies = 0;
        for (method, path, operation) in operations(&document) {
            let Some(content) = operation["requestBody"]["content"].as_object() else {
                continue;
            };
            for (media_type, media) in content {
                let schema = resolve(&document, &media["schema"]);
                assert_eq!(
                    schema["additionalProperties"],
                    Value::Bool(false),
                    "{method} {path} ({media_type}): the server refuses unknown fields"
                );
                bodies += 1;
            }
        }
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
