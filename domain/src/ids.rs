//! Validated identifiers. Ids are opaque strings of at most [`MAX_ID_LEN`] characters from
//! `[A-Za-z0-9._-]`; the ids orderflow generates itself are UUIDv7, so they sort by creation time.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// The longest id accepted from outside.
pub const MAX_ID_LEN: usize = 64;

fn check_id(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(ValidationError::new(
            field,
            format_args!("must be at most {max} characters"),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ValidationError::new(
            field,
            "may only contain letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// A new time-ordered id (UUIDv7, hyphenated).
pub fn new_time_ordered_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id received from outside, naming the field on rejection.
            pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                check_id($field, &value, $max)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // What `check_id` accepts: 1 to its maximum length of characters from `[A-Za-z0-9._-]`.
        #[cfg(feature = "schemas")]
        crate::contracts::inline_json_schema!(
            $name,
            crate::contracts::string_schema(&format!("^{ID_CHARACTERS}{{1,{}}}$", $max))
        );
    };
}

/// The characters of an id, as a regular-expression character class.
#[cfg(feature = "schemas")]
const ID_CHARACTERS: &str = "[A-Za-z0-9._-]";

id_type!(
    /// Identifies an order; the order's stream is `order#<id>`.
    OrderId, "order_id", MAX_ID_LEN
);
id_type!(
    /// Identifies a customer.
    CustomerId, "customer_id", MAX_ID_LEN
);
id_type!(
    /// Identifies a delivery; always derived from its order id ([`DeliveryId::for_order`]).
    DeliveryId, "delivery_id", MAX_ID_LEN + 2
);
id_type!(
    /// Identifies a courier.
    CourierId, "courier_id", MAX_ID_LEN
);
id_type!(
    /// Identifies a stock-keeping unit.
    Sku, "sku", MAX_ID_LEN
);
id_type!(
    /// Identifies a compensation coupon; derived from the delay it compensates.
    CouponId, "coupon_id", 2 * MAX_ID_LEN
);

impl OrderId {
    /// A new, time-ordered order id.
    pub fn generate() -> Self {
        Self(new_time_ordered_id())
    }
}

impl DeliveryId {
    /// The one delivery of an order. Deriving it makes a second delivery for an order impossible by
    /// construction.
    pub fn for_order(order_id: &OrderId) -> Self {
        Self(format!("d-{order_id}"))
    }
}

impl CouponId {
    /// The coupon that compensates delay number `delay_number` of a delivery: one per delay.
    pub fn for_delay(delivery_id: &DeliveryId, delay_number: u32) -> Self {
        Self(format!("c-{delivery_id}-{delay_number}"))
    }
}

/// The aggregate stream an event belongs to: `<kind>#<id>`, the partition key of the events table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// The stream of `kind` (`order`, `delivery`, `coupon`) with id `id`.
    pub fn new(kind: &str, id: impl fmt::Display) -> Self {
        Self(format!("{kind}#{id}"))
    }

    /// The stream of the aggregate `A` with id `id`: `<A::KIND>#<id>`.
    pub fn of<A: crate::Aggregate>(id: impl fmt::Display) -> Self {
        Self::new(A::KIND, id)
    }

    /// The order `id`'s stream (`order#<id>`).
    pub fn order(id: impl Borrow<OrderId>) -> Self {
        Self::of::<crate::order::Order>(id.borrow())
    }

    /// The delivery `id`'s stream (`delivery#<id>`).
    pub fn delivery(id: impl Borrow<DeliveryId>) -> Self {
        Self::of::<crate::delivery::Delivery>(id.borrow())
    }

    /// The coupon `id`'s stream (`coupon#<id>`).
    pub fn coupon(id: impl Borrow<CouponId>) -> Self {
        Self::of::<crate::coupon::Coupon>(id.borrow())
    }

    /// The stream id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aggregate kind: the part before `#`.
    pub fn kind(&self) -> &str {
        self.0
            .split_once('#')
            .map_or(self.0.as_str(), |(kind, _)| kind)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// `<kind>#<id>`; the contract of each event type names its kind (`crate::contracts`).
#[cfg(feature = "schemas")]
crate::contracts::inline_json_schema!(
    StreamId,
    crate::contracts::string_schema(&StreamId::pattern("[a-z]+"))
);

#[cfg(feature = "schemas")]
impl StreamId {
    /// The pattern of the stream ids of aggregate `kind` (a regular expression itself).
    pub(crate) fn pattern(kind: &str) -> String {
        format!("^{kind}#{ID_CHARACTERS}+$")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_opaque_safe_strings() {
        assert!(OrderId::parse("ord_01J9-abc.x").is_ok());
        assert_eq!(
            OrderId::parse("a".repeat(MAX_ID_LEN)).map(|i| i.0.len()),
            Ok(64)
        );
    }

    #[test]
    fn ids_reject_empty_long_and_unsafe_text() {
        let empty = CustomerId::parse("").unwrap_err();
        assert_eq!(
            (empty.field.as_str(), empty.rule.as_str()),
            ("customer_id", "must not be empty")
        );
        assert!(OrderId::parse("a".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(
            OrderId::parse("order#1").is_err(),
            "'#' would break the stream key"
        );
        assert!(OrderId::parse("ord 1").is_err());
        assert!(Sku::parse("../etc").is_err());
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<OrderId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<OrderId>("\"no way\"").is_err());
    }

    #[test]
    fn generated_ids_are_time_ordered_and_valid() {
        let first = OrderId::generate();
        let second = OrderId::generate();
        assert!(first < second, "{first} should sort before {second}");
        assert!(OrderId::parse(first.as_str()).is_ok());
    }

    #[test]
    fn derived_ids_and_streams() {
        let order = OrderId::parse("o1").unwrap();
        let delivery = DeliveryId::for_order(&order);
        assert_eq!(delivery.as_str(), "d-o1");
        assert_eq!(CouponId::for_delay(&delivery, 2).as_str(), "c-d-o1-2");
        let stream = StreamId::new("order", &order);
        assert_eq!((stream.as_str(), stream.kind()), ("order#o1", "order"));
    }
}
