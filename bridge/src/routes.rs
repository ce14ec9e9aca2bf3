//! The HTTP API's route table: every `HttpApi` event of every function, as method + path template
//! (`/orders/{id}`, `{name+}` greedy), and matching a request against it the way API Gateway does
//! (a literal segment beats a parameter; `ANY` matches every method).

use std::collections::BTreeMap;

use super::stack::FunctionSpec;

/// What a route requires of its caller: a token its JWT authorizer accepts, with one of the
/// scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// The API's logical id.
    pub api: String,
    /// The authorizer's name in the API's `Auth.Authorizers`.
    pub authorizer: String,
    /// `AuthorizationScopes`: the token must hold at least one (empty: any valid token).
    pub scopes: Vec<String>,
}

/// One route: method, path template, the function behind it and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The event's name in the template (`PlaceOrder`).
    pub event: String,
    /// The HTTP method, upper case (`ANY` for every method).
    pub method: String,
    /// The path template (`/orders/{id}`).
    pub path: String,
    /// The function to invoke.
    pub function: FunctionSpec,
    /// The authorization it requires (`None`: anyone may call it).
    pub auth: Option<RouteAuth>,
}

impl HttpRoute {
    /// The API Gateway route key (`POST /orders`).
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A request matched to a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a HttpRoute,
    /// The path parameters (`id` → `o-1`), percent-decoded.
    pub parameters: BTreeMap<String, String>,
}

/// Every route of the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<HttpRoute>,
}

/// How well a template matched: more literal segments first, then fewer greedy ones.
type Score = (usize, usize);

impl RouteTable {
    /// A table of `routes`.
    pub fn new(routes: Vec<HttpRoute>) -> Self {
        Self { routes }
    }

    /// Every route.
    pub fn routes(&self) -> &[HttpRoute] {
        &self.routes
    }

    /// The route for `method` and `path` (query string excluded), if any.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let mut best: Option<(Score, bool, Matched<'_>)> = None;
        for route in &self.routes {
            let exact_method = route.method.eq_ignore_ascii_case(method);
            if !exact_method && route.method != "ANY" {
                continue;
            }
            let Some((score, parameters)) = match_path(&route.path, path) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((best_score, best_exact, _)) => {
                    (score, exact_method) > (*best_score, *best_exact)
                }
            };
            if better {
                best = Some((score, exact_method, Matched { route, parameters }));
            }
        }
        best.map(|(_, _, matched)| matched)
    }
}

/// Matches `path` against `template`; the score and the parameters when it matches.
fn match_path(template: &str, path: &str) -> Option<(Score, BTreeMap<String, String>)> {
    let wanted: Vec<&str> = segments(template);
    let given: Vec<&str> = segments(path);
    let mut parameters = BTreeMap::new();
    let mut literals = 0;
    for (index, pattern) in wanted.iter().enumerate() {
        if let Some(name) = pattern.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            // Greedy: the rest of the path (at least one segment), as the last template segment.
            if index + 1 != wanted.len() || given.len() <= index {
                return None;
            }
            parameters.insert(name.to_owned(), decode(&given[index..].join("/")));
            return Some(((literals, 0), parameters));
        }
        let segment = given.get(index)?;
        match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                if segment.is_empty() {
                    return None;
                }
                parameters.insert(name.to_owned(), decode(segment));
            }
            None if pattern == segment => literals += 1,
            None => return None,
        }
    }
    (given.len() == wanted.len()).then_some(((literals, 1), parameters))
}

/// The segments of a path, without the leading slash (a trailing slash is ignored).
fn segments(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

fn decode(raw: &str) -> String {
    urlencoding::decode(raw).map_or_else(|_| raw.to_owned(), |s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn route(method: &str, path: &str) -> HttpRoute {
        HttpRoute {
            event: format!("{method}{path}"),
            method: method.into(),
            path: path.into(),
            function: FunctionSpec {
                logical_id: "Fn".into(),
                handler: "fn".into(),
                name: "fn".into(),
                timeout: Duration::from_secs(3),
            },
            auth: None,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(vec![
            route("POST", "/orders"),
            route("GET", "/orders/{id}"),
            route("GET", "/orders/recent"),
            route("POST", "/orders/{id}/cancel"),
            route("ANY", "/files/{path+}"),
        ])
    }

    #[test]
    fn parameters_are_taken_from_the_path_and_decoded() {
        let table = table();
        let found = table.find("GET", "/orders/o%2D1").unwrap();
        assert_eq!(found.route.path, "/orders/{id}");
        assert_eq!(found.parameters["id"], "o-1");
        let found = table.find("POST", "/orders/o-1/cancel/").unwrap();
        assert_eq!(found.route.route_key(), "POST /orders/{id}/cancel");
    }

    #[test]
    fn a_literal_segment_beats_a_parameter() {
        let table = table();
        let found = table.find("GET", "/orders/recent").unwrap();
        assert_eq!(found.route.path, "/orders/recent");
        assert!(found.parameters.is_empty());
    }

    #[test]
    fn greedy_parameters_take_the_rest_and_any_matches_every_method() {
        let table = table();
        let found = table.find("DELETE", "/files/a/b.txt").unwrap();
        assert_eq!(found.parameters["path"], "a/b.txt");
        assert!(table.find("GET", "/files").is_none());
    }

    #[test]
    fn unknown_paths_and_methods_do_not_match() {
        let table = table();
        assert!(table.find("GET", "/nope").is_none());
        assert!(table.find("DELETE", "/orders/o-1").is_none());
        assert!(table.find("GET", "/orders//cancel").is_none());
        assert!(table.find("GET", "/orders/o-1/cancel/more").is_none());
    }
}
