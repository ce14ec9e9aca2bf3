//! The route table: the one list of what the courier API answers. Dispatch and `openapi.json` are
//! checked against it.

pub use shared::http::routes::{NoRoute, RouteSpec};

/// Every route the function serves.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: "GET",
        path: "/deliveries/{id}",
    },
    RouteSpec {
        method: "POST",
        path: "/deliveries/{id}/dispatch",
    },
    RouteSpec {
        method: "POST",
        path: "/deliveries/{id}/delay",
    },
    RouteSpec {
        method: "POST",
        path: "/deliveries/{id}/complete",
    },
    RouteSpec {
        method: "POST",
        path: "/deliveries/{id}/fail",
    },
];

/// What a courier asks of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourierAction {
    /// `POST /deliveries/{id}/dispatch`: picked up.
    Dispatch,
    /// `POST /deliveries/{id}/delay`: running late.
    Delay,
    /// `POST /deliveries/{id}/complete`: delivered.
    Complete,
    /// `POST /deliveries/{id}/fail`: could not deliver.
    Fail,
}

impl CourierAction {
    /// Every action, in route order.
    pub const ALL: [Self; 4] = [Self::Dispatch, Self::Delay, Self::Complete, Self::Fail];

    /// The last path segment of the action's route.
    pub const fn segment(self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::Delay => "delay",
            Self::Complete => "complete",
            Self::Fail => "fail",
        }
    }

    /// The action's path template.
    pub const fn template(self) -> &'static str {
        match self {
            Self::Dispatch => "/deliveries/{id}/dispatch",
            Self::Delay => "/deliveries/{id}/delay",
            Self::Complete => "/deliveries/{id}/complete",
            Self::Fail => "/deliveries/{id}/fail",
        }
    }

    /// The action named by a path segment.
    pub fn from_segment(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.segment() == segment)
    }
}

/// A matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /deliveries/{id}`
    GetDelivery(String),
    /// `POST /deliveries/{id}/<action>`
    Act(String, CourierAction),
}

/// Matches a method and path (a trailing slash is ignored; the id is checked by the handlers,
/// which refuse anything but the id alphabet).
pub fn match_route(method: &str, path: &str) -> Result<Route, NoRoute> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (template, route) = match segments.as_slice() {
        ["deliveries", id] if !id.is_empty() => (
            "/deliveries/{id}",
            (method == "GET").then(|| Route::GetDelivery((*id).to_owned())),
        ),
        ["deliveries", id, segment] if !id.is_empty() => {
            let Some(action) = CourierAction::from_segment(segment) else {
                return Err(NoRoute::NotFound);
            };
            (
                action.template(),
                (method == "POST").then(|| Route::Act((*id).to_owned(), action)),
            )
        }
        _ => return Err(NoRoute::NotFound),
    };
    route.ok_or_else(|| NoRoute::method_not_allowed(ROUTES, template))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use shared::http::caller::Group;

    use super::*;

    /// The scope API Gateway's JWT authorizer requires on every route (`template.yaml`).
    const SCOPE: &str = "aws.cognito.signin.user.admin";

    fn document() -> Value {
        serde_json::from_str(include_str!("../../openapi.json")).unwrap()
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

    /// A concrete path for a template, with `d-x1` for every parameter.
    fn concrete(template: &str) -> String {
        template.replace("{id}", "d-x1")
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
    fn every_action_has_its_route() {
        for action in CourierAction::ALL {
            assert!(
                action
                    .template()
                    .ends_with(&format!("/{}", action.segment())),
                "{action:?}"
            );
            assert!(
                ROUTES.contains(&RouteSpec {
                    method: "POST",
                    path: action.template(),
                }),
                "{action:?}"
            );
        }
    }

    #[test]
    fn parameters_and_actions_are_taken_from_the_path() {
        assert_eq!(
            match_route("GET", "/deliveries/d-o7"),
            Ok(Route::GetDelivery("d-o7".into()))
        );
        assert_eq!(
            match_route("POST", "/deliveries/d-o7/dispatch/"),
            Ok(Route::Act("d-o7".into(), CourierAction::Dispatch))
        );
        assert_eq!(
            match_route("POST", "/deliveries/d-o7/delay"),
            Ok(Route::Act("d-o7".into(), CourierAction::Delay))
        );
        assert_eq!(
            match_route("POST", "/deliveries/d-o7/complete"),
            Ok(Route::Act("d-o7".into(), CourierAction::Complete))
        );
        assert_eq!(
            match_route("POST", "/deliveries/d-o7/fail"),
            Ok(Route::Act("d-o7".into(), CourierAction::Fail))
        );
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes_served() {
        let document: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
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
        assert!(bodies > 0, "the courier actions take bodies");
    }

    #[test]
    fn unknown_paths_and_wrong_methods_are_told_apart() {
        assert_eq!(match_route("GET", "/nope"), Err(NoRoute::NotFound));
        assert_eq!(match_route("GET", "/deliveries"), Err(NoRoute::NotFound));
        assert_eq!(
            match_route("POST", "/deliveries//dispatch"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            match_route("POST", "/deliveries/d-1/teleport"),
            Err(NoRoute::NotFound)
        );
        assert_eq!(
            match_route("DELETE", "/deliveries/d-1"),
            Err(NoRoute::MethodNotAllowed(vec!["GET"]))
        );
        assert_eq!(
            match_route("GET", "/deliveries/d-1/complete"),
            Err(NoRoute::MethodNotAllowed(vec!["POST"]))
        );
        assert_eq!(
            match_route("POST", "/deliveries/d-1"),
            Err(NoRoute::MethodNotAllowed(vec!["GET"]))
        );
    }
}
