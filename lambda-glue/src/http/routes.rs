//! Route tables: what an HTTP function answers, the one list its dispatch, `template.yaml` and its
//! `openapi.json` are checked against, and the answer to a request that matches none of it.

use super::problem::Problem;

/// One route: method and path template (API Gateway syntax, `{name}` for a parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: &'static str,
    /// The path template.
    pub path: &'static str,
}

/// Why no route matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// No route has this path.
    NotFound,
    /// The path exists with other methods (listed for the `Allow` header).
    MethodNotAllowed(Vec<&'static str>),
}

impl NoRoute {
    /// The path template `template` exists in `routes`, but not with the request's method.
    pub fn method_not_allowed(routes: &[RouteSpec], template: &str) -> Self {
        Self::MethodNotAllowed(
            routes
                .iter()
                .filter(|r| r.path == template)
                .map(|r| r.method)
                .collect(),
        )
    }
}

impl From<NoRoute> for Problem {
    /// 404, or 405 with the `Allow` header.
    fn from(no_route: NoRoute) -> Self {
        match no_route {
            NoRoute::NotFound => Problem::not_found("no such resource"),
            NoRoute::MethodNotAllowed(allow) => Problem::method_not_allowed(allow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[RouteSpec] = &[
        RouteSpec {
            method: "GET",
            path: "/things/{id}",
        },
        RouteSpec {
            method: "DELETE",
            path: "/things/{id}",
        },
        RouteSpec {
            method: "POST",
            path: "/things",
        },
    ];

    #[test]
    fn a_known_path_with_another_method_lists_the_methods_it_allows() {
        assert_eq!(
            NoRoute::method_not_allowed(ROUTES, "/things/{id}"),
            NoRoute::MethodNotAllowed(vec!["GET", "DELETE"])
        );
        let problem = Problem::from(NoRoute::method_not_allowed(ROUTES, "/things"));
        assert_eq!(problem.status, 405);
        assert_eq!(&*problem.allow, ["POST"]);
        assert_eq!(Problem::from(NoRoute::NotFound).status, 404);
    }
}
