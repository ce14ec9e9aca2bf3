//! Who is calling: the authenticated principal, read from the claims API Gateway's JWT authorizer
//! verified (`requestContext.authorizer.jwt.claims`), never from the body. See docs/identity.md.
//!
//! - the subject (`sub`) is the caller's id: a customer's [`CustomerId`], a courier's
//!   [`CourierId`];
//! - the groups (`cognito:groups`) say what the caller may do: `customers` place, read, list and
//!   cancel their own orders; `couriers` act on deliveries; `support` reads everything.
//!
//! API Gateway hands every claim over as a string; a list claim such as `cognito:groups` arrives
//! as `[customers support]` (a JSON array is accepted too, for the same list sent by other
//! authorizers).

use std::collections::BTreeSet;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::problem::Problem;
use domain::envelope::Actor;
pub use domain::identity::Group;
use domain::ids::{CourierId, CustomerId};

/// The claim holding the caller's id.
pub const SUBJECT_CLAIM: &str = "sub";
/// The claim holding the caller's groups.
pub const GROUPS_CLAIM: &str = "cognito:groups";

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    subject: String,
    groups: BTreeSet<Group>,
}

impl Caller {
    /// A caller with `subject` in `groups` (tests and the claims parser).
    pub fn new(subject: impl Into<String>, groups: impl IntoIterator<Item = Group>) -> Self {
        Self {
            subject: subject.into(),
            groups: groups.into_iter().collect(),
        }
    }

    /// The caller of `request`: 401 when the authorizer's claims are missing or carry no usable
    /// subject.
    pub fn from_request(request: &Request) -> Result<Self, Problem> {
        let RequestContext::ApiGatewayV2(context) = request.request_context() else {
            return Err(Problem::unauthenticated());
        };
        let claims = context
            .authorizer
            .and_then(|authorizer| authorizer.jwt)
            .map(|jwt| jwt.claims)
            .ok_or_else(Problem::unauthenticated)?;
        Self::from_claims(
            claims.get(SUBJECT_CLAIM).map(String::as_str),
            claims.get(GROUPS_CLAIM).map(String::as_str),
        )
    }

    /// The caller from its `sub` and `cognito:groups` claims (groups not ours are ignored).
    pub fn from_claims(subject: Option<&str>, groups: Option<&str>) -> Result<Self, Problem> {
        let subject = subject
            .map(str::trim)
            .filter(|s| CustomerId::parse(*s).is_ok())
            .ok_or_else(Problem::unauthenticated)?;
        Ok(Self::new(
            subject,
            parse_groups(groups.unwrap_or_default())
                .iter()
                .filter_map(|name| Group::from_name(name)),
        ))
    }

    /// The caller's id (the token's subject).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Whether the caller is in `group`.
    pub fn is(&self, group: Group) -> bool {
        self.groups.contains(&group)
    }

    /// The caller as a customer: 403 unless in `customers`.
    pub fn customer(&self) -> Result<CustomerId, Problem> {
        self.require(Group::Customers)?;
        CustomerId::parse(self.subject.as_str()).map_err(|_| Problem::unauthenticated())
    }

    /// The caller as a courier: 403 unless in `couriers`.
    pub fn courier(&self) -> Result<CourierId, Problem> {
        self.require(Group::Couriers)?;
        CourierId::parse(self.subject.as_str()).map_err(|_| Problem::unauthenticated())
    }

    /// 403 unless the caller is in `group`.
    pub fn require(&self, group: Group) -> Result<(), Problem> {
        if self.is(group) {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "forbidden",
                format!("only members of `{group}` may do this"),
            ))
        }
    }

    /// Who the stored events say acted: `customer/<sub>`, `courier/<sub>` or `support/<sub>`, by
    /// the role the caller acts in.
    pub fn actor_as(&self, group: Group) -> Actor {
        Actor::principal(group.name().trim_end_matches('s'), &self.subject)
    }
}

/// `[a b]` (API Gateway's rendering of a list claim), `["a","b"]` (JSON) or `a` → the names.
pub fn parse_groups(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if raw.starts_with('[')
        && let Ok(names) = serde_json::from_str::<Vec<String>>(raw)
    {
        return names;
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(|name| name.trim().trim_matches('"'))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_in_api_gateways_rendering_or_as_json() {
        assert_eq!(
            parse_groups("[customers support]"),
            ["customers", "support"]
        );
        assert_eq!(parse_groups("[couriers]"), ["couriers"]);
        assert_eq!(
            parse_groups(r#"["customers","support"]"#),
            ["customers", "support"]
        );
        assert_eq!(parse_groups("support"), ["support"]);
        assert!(parse_groups("").is_empty());
        assert!(parse_groups("[]").is_empty());
    }

    #[test]
    fn a_caller_needs_a_subject_and_acts_only_in_its_groups() {
        let caller = Caller::from_claims(Some("c-1"), Some("[customers admins]")).unwrap();
        assert_eq!(caller.customer().unwrap().as_str(), "c-1");
        assert_eq!(caller.courier().unwrap_err().status, 403);
        assert!(!caller.is(Group::Support));
        assert_eq!(caller.actor_as(Group::Customers).as_str(), "customer/c-1");
        assert_eq!(
            Caller::from_claims(None, Some("[customers]"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            Caller::from_claims(Some("a b"), None).unwrap_err().status,
            401
        );
        let nobody = Caller::from_claims(Some("c-2"), None).unwrap();
        assert_eq!(nobody.customer().unwrap_err().status, 403);
    }
}
