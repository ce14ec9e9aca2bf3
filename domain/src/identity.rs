//! Who may call the API: the user pool's groups (`template.yaml`'s `CustomersGroup`,
//! `CouriersGroup`, `SupportGroup`). The HTTP functions read a caller's groups from the JWT
//! authorizer's claims (`lambda_glue::http::caller`); the tools create users in them.

use std::fmt;

/// What a caller may be, one Cognito group each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// `customers`: their own orders.
    Customers,
    /// `couriers`: deliveries.
    Couriers,
    /// `support`: reads everything.
    Support,
}

impl Group {
    /// Every group.
    pub const ALL: [Self; 3] = [Self::Customers, Self::Couriers, Self::Support];

    /// The group's name in the user pool.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Couriers => "couriers",
            Self::Support => "support",
        }
    }

    /// The group named `name`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
