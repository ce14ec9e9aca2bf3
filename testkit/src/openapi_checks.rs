//! Checks of an HTTP function's OpenAPI document against what the function serves and enforces
//! (testkit): the order API and the courier API run the same checks on their own
//! documents, so the two contracts are held to one standard.
// Test support: a panic is how a broken document reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

use domain::identity::Group;
use lambda_glue::http::routes::RouteSpec;

/// The scope API Gateway's JWT authorizer requires on every route (`template.yaml`).
pub const SCOPE: &str = "aws.cognito.signin.user.admin";

/// `value`, or what its local `$ref` (`#/components/...`) points at.
pub fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
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
pub fn operations(document: &Value) -> Vec<(String, String, &Value)> {
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

/// The document describes exactly `routes`, each with its responses.
pub fn assert_describes_exactly(document: &Value, routes: &[RouteSpec]) {
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
    let mut served: Vec<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    served.sort();
    assert_eq!(documented, served, "openapi.json and ROUTES disagree");
}

/// Every operation requires a Cognito access token with [`SCOPE`]; none is anonymous.
pub fn assert_every_operation_requires_the_scope(document: &Value) {
    let schemes = &document["components"]["securitySchemes"];
    for (method, path, operation) in operations(document) {
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

/// Every operation names the groups that may call it and documents 400, 401, 403, 503 (and 404
/// where it takes an id), each response with a body schema.
pub fn assert_every_operation_documents_callers_and_refusals(document: &Value) {
    for (method, path, operation) in operations(document) {
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
            let content = resolve(document, response)["content"].as_object();
            assert!(
                content.is_some_and(|c| !c.is_empty()),
                "{method} {path} {status}: no body schema"
            );
        }
    }
}

/// Every path parameter is declared, in order, with an anchored pattern.
pub fn assert_path_parameters_have_anchored_patterns(document: &Value) {
    for (method, path, operation) in operations(document) {
        let parameters: Vec<&Value> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(document, p))
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
            let pattern = resolve(document, &parameter["schema"])["pattern"].as_str();
            assert!(
                pattern.is_some_and(|p| p.starts_with('^') && p.ends_with('$')),
                "{method} {path}: {} has no anchored pattern",
                parameter["name"]
            );
        }
    }
}

/// Every request body schema refuses unknown fields, as the server does; how many bodies there are.
pub fn assert_request_bodies_are_closed(document: &Value) -> usize {
    let mut bodies = 0;
    for (method, path, operation) in operations(document) {
        let Some(content) = operation["requestBody"]["content"].as_object() else {
            continue;
        };
        for (media_type, media) in content {
            let schema = resolve(document, &media["schema"]);
            assert_eq!(
                schema["additionalProperties"],
                Value::Bool(false),
                "{method} {path} ({media_type}): the server refuses unknown fields"
            );
            bodies += 1;
        }
    }
    bodies
}
