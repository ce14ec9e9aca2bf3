//! Schema evolution. Readers accept every `schema_version` ever written: before an event is decoded
//! (in the store, the projector and every consumer) its data is upcast step by step to the current
//! version. Adding an upcaster = one entry in [`UPCASTERS`] plus a test on a stored sample.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::address::Address;
use crate::envelope::StoredEvent;
use crate::events::{DecodeError, DomainEvent};
use crate::ids::{CustomerId, OrderId, Sku};
use crate::money::{Cents, Currency};
use crate::order::{LineItem, OrderPlaced, Quantity, UnitPrice};

/// One upcasting step: data at one version in, data at the next version out (or why not).
pub type UpcastFn = fn(Map<String, Value>) -> Result<Map<String, Value>, String>;

/// Turns data of `event_type` at `from_version` into data at `from_version + 1`.
pub struct Upcaster {
    /// The event type it applies to.
    pub event_type: &'static str,
    /// The version it reads.
    pub from_version: u32,
    /// The conversion.
    pub apply: UpcastFn,
    /// The data it reads, as a JSON Schema: the contract of `event_type` at `from_version`
    /// ([`crate::contracts`]).
    #[cfg(feature = "schemas")]
    pub reads: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

/// Every upcaster, oldest first.
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "OrderPlaced",
    from_version: 1,
    apply: order_placed_v1_to_v2,
    #[cfg(feature = "schemas")]
    reads: schemars::SchemaGenerator::subschema_for::<OrderPlacedV1>,
}];

/// `OrderPlaced` data at schema version 1, written while orderflow sold in euros only: no
/// `currency`, and the amounts named `total_cents` and `items[].unit_price_cents`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
struct OrderPlacedV1 {
    /// The order.
    order_id: OrderId,
    /// Who ordered.
    customer_id: CustomerId,
    /// What.
    items: Vec<LineItemV1>,
    /// Sum of the lines, in euro cents.
    total_cents: Cents,
    /// Where to.
    delivery_address: Address,
}

/// One line of a v1 `OrderPlaced`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
struct LineItemV1 {
    /// What.
    sku: Sku,
    /// How many.
    quantity: Quantity,
    /// At what price per unit, in euro cents.
    unit_price_cents: UnitPrice,
}

/// v1 → v2: `total_cents` becomes `total`, `items[].unit_price_cents` becomes `items[].unit_price`,
/// and the currency, which v1 left unsaid, is stated: EUR.
fn order_placed_v1_to_v2(data: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let v1: OrderPlacedV1 =
        serde_json::from_value(Value::Object(data)).map_err(|e| format!("v1 OrderPlaced: {e}"))?;
    let v2 = OrderPlaced {
        order_id: v1.order_id,
        customer_id: v1.customer_id,
        items: v1
            .items
            .into_iter()
            .map(|item| LineItem {
                sku: item.sku,
                quantity: item.quantity,
                unit_price: item.unit_price_cents,
            })
            .collect(),
        total: v1.total_cents,
        currency: Currency::EUR,
        delivery_address: v1.delivery_address,
    };
    match serde_json::to_value(v2) {
        Ok(Value::Object(data)) => Ok(data),
        Ok(_) => Err("v2 OrderPlaced is not an object".into()),
        Err(e) => Err(format!("v2 OrderPlaced: {e}")),
    }
}

/// Brings a stored event's data to the current schema version of its type.
pub fn upcast(mut event: StoredEvent) -> Result<StoredEvent, DecodeError> {
    let current = DomainEvent::current_schema_version(&event.event_type)
        .ok_or_else(|| DecodeError::UnknownEventType(event.event_type.clone()))?;
    let unsupported = |event: &StoredEvent| DecodeError::UnsupportedSchemaVersion {
        event_type: event.event_type.clone(),
        version: event.schema_version,
        current,
    };
    if event.schema_version > current || event.schema_version == 0 {
        return Err(unsupported(&event));
    }
    while event.schema_version < current {
        let step = UPCASTERS
            .iter()
            .find(|u| u.event_type == event.event_type && u.from_version == event.schema_version)
            .ok_or_else(|| unsupported(&event))?;
        let Value::Object(data) = std::mem::take(&mut event.data) else {
            return Err(DecodeError::Malformed {
                event_type: event.event_type,
                reason: "data is not an object".into(),
            });
        };
        event.data =
            Value::Object((step.apply)(data).map_err(|reason| DecodeError::Malformed {
                event_type: event.event_type.clone(),
                reason,
            })?);
        event.schema_version += 1;
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Cents, Currency};
    use crate::order::OrderEvent;

    const V1_SAMPLE: &str = include_str!("../../schemas/samples/OrderPlaced-v1.json");

    #[test]
    fn a_stored_v1_order_placed_reads_as_v2_in_euros() {
        let stored: StoredEvent = serde_json::from_str(V1_SAMPLE).unwrap();
        assert_eq!(stored.schema_version, 1);
        let OrderEvent::OrderPlaced(placed) = stored.decode::<OrderEvent>().unwrap() else {
            panic!("expected OrderPlaced");
        };
        assert_eq!(placed.currency, Currency::EUR);
        assert_eq!(placed.total, Cents::new(4_497));
        assert_eq!(placed.items.len(), 2);
        assert_eq!(placed.items[0].unit_price.cents(), Cents::new(1_299));
        assert_eq!(placed.items[1].quantity.get(), 1);
        assert_eq!(
            placed.order_id.as_str(),
            "018f1c2e-7b3a-7000-8000-000000000001"
        );
        let upcast = upcast(stored).unwrap();
        assert_eq!(upcast.schema_version, 2);
        assert!(upcast.data.get("total_cents").is_none());
    }

    #[test]
    fn current_versions_pass_through_untouched() {
        let mut stored: StoredEvent = serde_json::from_str(V1_SAMPLE).unwrap();
        stored = upcast(stored).unwrap();
        assert_eq!(upcast(stored.clone()).unwrap(), stored);
    }

    #[test]
    fn unknown_versions_and_types_are_refused_not_guessed() {
        let mut future: StoredEvent = serde_json::from_str(V1_SAMPLE).unwrap();
        future.schema_version = 3;
        assert!(matches!(
            upcast(future.clone()),
            Err(DecodeError::UnsupportedSchemaVersion {
                version: 3,
                current: 2,
                ..
            })
        ));
        future.schema_version = 0;
        assert!(upcast(future.clone()).is_err());
        future.event_type = "OrderBeamed".into();
        assert_eq!(
            upcast(future),
            Err(DecodeError::UnknownEventType("OrderBeamed".into()))
        );
    }

    #[test]
    fn a_broken_v1_sample_is_malformed() {
        let mut stored: StoredEvent = serde_json::from_str(V1_SAMPLE).unwrap();
        stored.data.as_object_mut().unwrap().remove("total_cents");
        assert!(matches!(upcast(stored), Err(DecodeError::Malformed { .. })));
    }
}
