//! Domain events and their wire form. On the wire an event is its `event_type` (the variant name,
//! past tense) plus its `data` (the payload as a JSON object); the envelope around it lives in
//! [`crate::envelope`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::coupon::CouponEvent;
use crate::delivery::DeliveryEvent;
use crate::order::OrderEvent;

/// Why stored data could not be turned into a domain event. Such a record can never succeed:
/// consumers treat it as poison (fail fast, to the dead-letter queue), never as a silent skip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No event of this type exists.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// The schema version is newer than this code knows, or has no upcaster.
    #[error("{event_type} schema version {version} is not supported (current: {current})")]
    UnsupportedSchemaVersion {
        /// The event type.
        event_type: String,
        /// The stored version.
        version: u32,
        /// The version this code writes.
        current: u32,
    },
    /// The data does not match the schema.
    #[error("{event_type} data is malformed: {reason}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// What serde said.
        reason: String,
    },
}

/// A family of events that serialise as `{"event_type": …, "data": {…}}`.
pub trait Event: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync {
    /// Every event type of the family with its current schema version.
    const SCHEMAS: &'static [(&'static str, u32)];

    /// The event type (variant name).
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for this event.
    fn schema_version(&self) -> u32 {
        current_version(Self::SCHEMAS, self.event_type()).unwrap_or(1)
    }

    /// The payload as a JSON object.
    fn to_data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Rebuilds an event from its type and (current-version) data.
    fn from_data(event_type: &str, data: Value) -> Result<Self, DecodeError> {
        if current_version(Self::SCHEMAS, event_type).is_none() {
            return Err(DecodeError::UnknownEventType(event_type.to_owned()));
        }
        serde_json::from_value(json!({ "event_type": event_type, "data": data })).map_err(|e| {
            DecodeError::Malformed {
                event_type: event_type.to_owned(),
                reason: e.to_string(),
            }
        })
    }
}

fn current_version(schemas: &[(&str, u32)], event_type: &str) -> Option<u32> {
    schemas
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
}

/// Declares an event family: an adjacently tagged enum (one variant per event, named after it)
/// with the current schema version of each.
macro_rules! event_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident($payload:ty) = $version:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "event_type", content = "data")]
        pub enum $name {
            $(
                #[doc = concat!("`", stringify!($variant), "`")]
                $variant($payload),
            )+
        }

        impl $crate::events::Event for $name {
            const SCHEMAS: &'static [(&'static str, u32)] = &[$((stringify!($variant), $version)),+];

            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant)),+
                }
            }
        }

        #[cfg(feature = "schemas")]
        impl $crate::contracts::EventFamily for $name {
            const DATA: &'static [$crate::contracts::DataSchema] = &[$(
                $crate::contracts::DataSchema {
                    event_type: stringify!($variant),
                    schema_version: $version,
                    schema: schemars::SchemaGenerator::subschema_for::<$payload>,
                }
            ),+];
        }
    };
}
pub(crate) use event_enum;

/// Any event of any context: what a consumer reading the bus or a stream decodes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// An order event.
    Order(OrderEvent),
    /// A delivery event.
    Delivery(DeliveryEvent),
    /// A coupon (alert context) event.
    Coupon(CouponEvent),
}

impl DomainEvent {
    /// The current schema version of `event_type`, or `None` when no such event exists.
    pub fn current_schema_version(event_type: &str) -> Option<u32> {
        [
            OrderEvent::SCHEMAS,
            DeliveryEvent::SCHEMAS,
            CouponEvent::SCHEMAS,
        ]
        .into_iter()
        .find_map(|schemas| current_version(schemas, event_type))
    }

    /// Rebuilds any event from its type and (current-version) data.
    pub fn from_data(event_type: &str, data: Value) -> Result<Self, DecodeError> {
        if current_version(OrderEvent::SCHEMAS, event_type).is_some() {
            OrderEvent::from_data(event_type, data).map(Self::Order)
        } else if current_version(DeliveryEvent::SCHEMAS, event_type).is_some() {
            DeliveryEvent::from_data(event_type, data).map(Self::Delivery)
        } else if current_version(CouponEvent::SCHEMAS, event_type).is_some() {
            CouponEvent::from_data(event_type, data).map(Self::Coupon)
        } else {
            Err(DecodeError::UnknownEventType(event_type.to_owned()))
        }
    }

    /// The event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Order(e) => e.event_type(),
            Self::Delivery(e) => e.event_type(),
            Self::Coupon(e) => e.event_type(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CustomerId, DeliveryId, OrderId};
    use crate::order::{OrderEvent, OrderShipped};

    fn shipped() -> OrderEvent {
        OrderEvent::OrderShipped(OrderShipped {
            order_id: OrderId::parse("o1").unwrap(),
            customer_id: CustomerId::parse("c1").unwrap(),
            delivery_id: DeliveryId::parse("d-o1").unwrap(),
        })
    }

    #[test]
    fn wire_form_is_type_plus_data() {
        let event = shipped();
        assert_eq!(event.event_type(), "OrderShipped");
        assert_eq!(event.schema_version(), 1);
        let data = event.to_data();
        assert_eq!(
            data,
            json!({"order_id": "o1", "customer_id": "c1", "delivery_id": "d-o1"})
        );
        assert_eq!(
            OrderEvent::from_data("OrderShipped", data.clone()).unwrap(),
            event
        );
        assert_eq!(
            DomainEvent::from_data("OrderShipped", data).unwrap(),
            DomainEvent::Order(event)
        );
    }

    #[test]
    fn decoding_names_what_is_wrong() {
        assert_eq!(
            DomainEvent::from_data("OrderTeleported", json!({})),
            Err(DecodeError::UnknownEventType("OrderTeleported".into()))
        );
        let err = DomainEvent::from_data("OrderShipped", json!({"order_id": "o1"})).unwrap_err();
        assert!(
            matches!(err, DecodeError::Malformed { ref reason, .. } if reason.contains("customer_id")),
            "{err}"
        );
        assert!(OrderEvent::from_data("DeliveryDispatched", json!({})).is_err());
    }

    #[test]
    fn every_event_type_has_one_current_version() {
        assert_eq!(DomainEvent::current_schema_version("OrderPlaced"), Some(2));
        assert_eq!(
            DomainEvent::current_schema_version("DeliveryDelayed"),
            Some(1)
        );
        assert_eq!(DomainEvent::current_schema_version("CouponIssued"), Some(1));
        assert_eq!(DomainEvent::current_schema_version("Nope"), None);
        let mut names: Vec<_> = [
            OrderEvent::SCHEMAS,
            DeliveryEvent::SCHEMAS,
            CouponEvent::SCHEMAS,
        ]
        .concat()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            count,
            "event type names are unique across contexts"
        );
    }
}
