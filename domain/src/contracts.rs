//! Event contracts (feature `schemas`; docs/event-contracts.md): a JSON Schema of every event type
//! at every schema version readers accept, derived from the Rust types with schemars.
//!
//! A contract describes the EventBridge `detail` of the event: the whole [`StoredEvent`] envelope
//! (the adapter puts exactly that on the bus, see [`crate::adapters::eventbridge`]) with
//! `event_type`, `schema_version` and the stream's kind fixed, and `data` the schema of the
//! payload's Rust type. The current version of each event type comes from its event family
//! ([`EventFamily`], implemented by `event_enum!`); every older version from the upcaster that
//! reads it ([`crate::upcasting::Upcaster::reads`]). The schemas describe the JSON serde writes
//! (serde's attributes and the types' own `JsonSchema` impls, which state the formats their
//! parsers accept), in JSON Schema draft 4, the draft the EventBridge schema registry takes
//! (`JSONSchemaDraft4`).
//!
//! Only the current versions are published: the publisher and the republish tool upcast before
//! they put an event on the bus. Older versions stay in the events table and its stream, where
//! every reader upcasts them.

use schemars::generate::SchemaSettings;
use schemars::transform::ReplaceConstValue;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Value, json};

use crate::Aggregate;
use crate::coupon::Coupon;
use crate::delivery::Delivery;
use crate::envelope::{StoredEvent, event_source};
use crate::events::Event;
use crate::ids::StreamId;
use crate::order::Order;
use crate::upcasting::UPCASTERS;

/// The JSON Schema draft every contract is written in (`$schema`).
pub const DRAFT_04: &str = "http://json-schema.org/draft-04/schema#";

/// The schema of one event type's data at one schema version.
#[derive(Debug, Clone, Copy)]
pub struct DataSchema {
    /// The event type.
    pub event_type: &'static str,
    /// The schema version.
    pub schema_version: u32,
    /// Adds the data's schema to a generator's definitions and returns a `$ref` to it.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

/// An event family's data schemas at the versions it writes (implemented by `event_enum!`).
pub trait EventFamily: Event {
    /// One per event type of the family, at its current schema version.
    const DATA: &'static [DataSchema];
}

/// The contract of one event type at one schema version.
#[derive(Debug, Clone, PartialEq)]
pub struct EventContract {
    /// The event type: the EventBridge `detail-type`.
    pub event_type: &'static str,
    /// The schema version.
    pub schema_version: u32,
    /// The EventBridge `source` events of this type are published under.
    pub source: &'static str,
    /// Whether this version is the one published on the bus (the current one).
    pub published: bool,
    /// The JSON Schema (draft 4) of the EventBridge `detail`.
    pub schema: Value,
}

impl EventContract {
    /// The file the schema is checked in as, under `schemas/events/`: `OrderPlaced-v2.json`.
    pub fn file_name(&self) -> String {
        format!("{}-v{}.json", self.event_type, self.schema_version)
    }

    /// The schema's name in the stage's EventBridge schema registry, after the registry's own
    /// convention `<source>@<detail-type>`: `orderflow.order@OrderPlaced`.
    pub fn registry_name(&self) -> String {
        format!("{}@{}", self.source, self.event_type)
    }
}

/// Every contract: each event type at its current version, and each older version an upcaster
/// reads; ordered by event type, then version.
pub fn contracts() -> Vec<EventContract> {
    let mut current: Vec<(&'static str, DataSchema)> = Vec::new();
    family::<Order>(&mut current);
    family::<Delivery>(&mut current);
    family::<Coupon>(&mut current);
    let older: Vec<(&'static str, DataSchema)> = UPCASTERS
        .iter()
        .filter_map(|upcaster| {
            let (kind, _) = current
                .iter()
                .find(|(_, data)| data.event_type == upcaster.event_type)?;
            let data = DataSchema {
                event_type: upcaster.event_type,
                schema_version: upcaster.from_version,
                schema: upcaster.reads,
            };
            Some((*kind, data))
        })
        .collect();
    let mut contracts: Vec<EventContract> = current
        .iter()
        .map(|(kind, data)| contract(kind, data, true))
        .chain(older.iter().map(|(kind, data)| contract(kind, data, false)))
        .collect();
    contracts.sort_by_key(|c| (c.event_type, c.schema_version));
    contracts
}

fn family<A: Aggregate>(into: &mut Vec<(&'static str, DataSchema)>)
where
    A::Event: EventFamily,
{
    into.extend(
        <A::Event as EventFamily>::DATA
            .iter()
            .map(|data| (A::KIND, *data)),
    );
}

/// The settings every contract is generated with: what serde writes, in draft 4 (draft 7's layout
/// — `definitions`, no `$ref` siblings — without `const`, which draft 4 does not have).
fn settings() -> SchemaSettings {
    SchemaSettings::draft07()
        .for_serialize()
        .with(|settings| settings.meta_schema = Some(DRAFT_04.into()))
        .with_transform(ReplaceConstValue::default())
}

/// The contract of `data` on a stream of aggregate `kind`.
fn contract(kind: &str, data: &DataSchema, published: bool) -> EventContract {
    // The source depends on the stream's kind only.
    let source = event_source(&StreamId::new(kind, "any"));
    let mut generator = settings().into_generator();
    let payload = (data.schema)(&mut generator);
    let mut schema = generator.root_schema_for::<StoredEvent>();
    let (event_type, version) = (data.event_type, data.schema_version);
    let audience = if published {
        "orderflow publishes this version."
    } else {
        "An older version: it is in the events table and its stream, not on the bus (the \
         publisher upcasts to the current version first); readers upcast it on read."
    };
    schema.insert("title".into(), json!(format!("{event_type}Envelope")));
    schema.insert(
        "description".into(),
        json!(format!(
            "The EventBridge detail of {event_type} events (source {source}, detail-type \
             {event_type}) at schema version {version}: the stored event's envelope, with the \
             event's payload as data. {audience}"
        )),
    );
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        let mut fix = |name: &str, key: &str, value: Value| {
            if let Some(property) = properties.get_mut(name).and_then(Value::as_object_mut) {
                property.insert(key.into(), value);
            }
        };
        fix("event_type", "enum", json!([event_type]));
        fix("schema_version", "enum", json!([version]));
        fix("stream_id", "pattern", json!(StreamId::pattern(kind)));
        properties.insert("data".into(), payload.to_value());
    }
    // Keys sorted: the same text whatever order serde_json keeps objects in.
    let mut schema = schema.to_value();
    schema.sort_all_objects();
    EventContract {
        event_type,
        schema_version: version,
        source,
        published,
        schema,
    }
}

/// Implements `schemars::JsonSchema` for a type serde writes as one plain value (a string, a
/// number) whose rules its parser enforces: `$schema` states them, and the schema is inlined
/// wherever the type is used.
macro_rules! inline_json_schema {
    ($type:ident, $schema:expr) => {
        impl schemars::JsonSchema for $type {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $schema
            }
        }
    };
}
pub(crate) use inline_json_schema;

/// A string matching `pattern`.
pub(crate) fn string_schema(pattern: &str) -> Schema {
    schemars::json_schema!({ "type": "string", "pattern": pattern })
}
