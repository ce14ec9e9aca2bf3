//! The route table: the one list of what the courier API answers. Dispatch and `openapi.json` are
//! checked against it.

pub use lambda_glue::http::routes::{NoRoute, RouteSpec};

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
    use testkit::openapi_checks;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(include_str!("../../openapi.json")).unwrap()
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
