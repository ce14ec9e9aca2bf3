//! Schema evolution. Readers accept every `schema_version` ever written: before an event is decoded
//! (in the store, the projector and every consumer) its data is upcast step by step to the current
//! version. Adding an upcaster = one entry in [`UPCASTERS`] plus a test on a stored sample.

use serde_json::{Map, Value};

use crate::envelope::StoredEvent;
use crate::events::{DecodeError, DomainEvent};

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
}

/// Every upcaster, oldest first.
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "OrderPlaced",
    from_version: 1,
    apply: order_placed_v1_to_v2,
}];

/// `OrderPlaced` v1 was written while orderflow sold in euros only: it had no `currency`, and its
/// amounts were named `total_cents` and `items[].unit_price_cents`. v2 names them `total` and
/// `items[].unit_price` and states the currency.
fn order_placed_v1_to_v2(mut data: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let total = data
        .remove("total_cents")
        .ok_or("v1 OrderPlaced without total_cents")?;
    data.insert("total".into(), total);
    let items = data
        .get_mut("items")
        .and_then(Value::as_array_mut)
        .ok_or("v1 OrderPlaced without items")?;
    for item in items {
        let item = item.as_object_mut().ok_or("v1 item is not an object")?;
        let price = item
            .remove("unit_price_cents")
            .ok_or("v1 item without unit_price_cents")?;
        item.insert("unit_price".into(), price);
    }
    data.insert("currency".into(), Value::String("EUR".into()));
    Ok(data)
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
    use crate::domain::order::OrderEvent;
    use crate::money::{Cents, Currency};

    const V1_SAMPLE: &str = include_str!("../tests/fixtures/order_placed_v1.json");

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
