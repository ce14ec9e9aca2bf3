//! The event contracts (docs/event-contracts.md) are true: the JSON Schemas checked in under
//! `schemas/events/` are what the Rust types generate now, the ones published are registered in
//! `template.yaml` with exactly that content, every stored sample under `schemas/samples/`
//! validates against its schema and reads through the code that reads the events table and the bus
//! (upcaster included), and schema and code refuse the same broken events.
//!
//! `ORDERFLOW_BLESS=1 cargo test -p domain --test contracts` writes the schemas and the template's
//! registry block from the Rust types; review the diff and commit it.

// Fixture helpers outside #[test] functions panic with a message too.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Once;

use domain::contracts::{DRAFT_04, EventContract, contracts};
use domain::coupon::CouponEvent;
use domain::delivery::DeliveryEvent;
use domain::envelope::StoredEvent;
use domain::events::{DomainEvent, Event};
use domain::order::OrderEvent;
use serde_json::{Value, json};

const REGENERATE: &str = "ORDERFLOW_BLESS=1 cargo test -p domain --test contracts";

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("domain/ is inside the workspace")
}

fn schemas_dir() -> PathBuf {
    workspace_root().join("schemas/events")
}

fn samples_dir() -> PathBuf {
    workspace_root().join("schemas/samples")
}

/// Under `ORDERFLOW_BLESS=1`: writes `schemas/events/` and the template's registry block from the
/// Rust types, once per run and before any test reads them.
fn bless_if_asked() {
    static BLESSED: Once = Once::new();
    BLESSED.call_once(|| {
        if std::env::var("ORDERFLOW_BLESS").is_ok_and(|v| v == "1") {
            let contracts = contracts();
            write_schemas(&contracts);
            write_template_block(&contracts);
        }
    });
}

fn write_schemas(contracts: &[EventContract]) {
    let dir = schemas_dir();
    std::fs::create_dir_all(&dir).expect("creating schemas/events");
    for name in json_files(&dir).keys() {
        if !contracts.iter().any(|c| &c.file_name() == name) {
            std::fs::remove_file(dir.join(name)).expect("removing a stale schema");
        }
    }
    for contract in contracts {
        std::fs::write(dir.join(contract.file_name()), schema_text(contract))
            .expect("writing a schema");
    }
}

fn write_template_block(contracts: &[EventContract]) {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("reading template.yaml");
    let (before, _, after) = split_template(&text);
    let block = template_block(contracts);
    std::fs::write(&path, format!("{before}{block}{after}")).expect("writing template.yaml");
}

/// A contract's schema as its file holds it: pretty JSON, keys sorted, one final newline.
fn schema_text(contract: &EventContract) -> String {
    let mut text = serde_json::to_string_pretty(&contract.schema).expect("a schema serialises");
    text.push('\n');
    text
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The `.json` files of `dir`, by file name.
fn json_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            (name, path)
        })
        .collect()
}

fn contract_of<'a>(
    contracts: &'a [EventContract],
    event_type: &str,
    version: u32,
) -> Option<&'a EventContract> {
    contracts
        .iter()
        .find(|c| c.event_type == event_type && c.schema_version == version)
}

fn validator(contract: &EventContract) -> jsonschema::Validator {
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&contract.schema)
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", contract.file_name()))
}

/// Why `instance` does not validate against `contract`, or `None` when it does.
fn schema_errors(contract: &EventContract, instance: &Value) -> Option<String> {
    let errors: Vec<String> = validator(contract)
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// What the code that reads the events table and the bus makes of `instance`: the envelope,
/// upcast to the current version, and the domain event decoded from it.
fn read_by_code(instance: &Value) -> Result<(StoredEvent, DomainEvent), String> {
    let stored: StoredEvent =
        serde_json::from_value(instance.clone()).map_err(|e| format!("envelope: {e}"))?;
    let current = domain::upcasting::upcast(stored).map_err(|e| e.to_string())?;
    let event = current.decode_any().map_err(|e| e.to_string())?;
    Ok((current, event))
}

/// The envelope with its data written again from the decoded event: what the code would store.
fn written_again(current: &StoredEvent, event: &DomainEvent) -> Value {
    let data = match event {
        DomainEvent::Order(e) => e.to_data(),
        DomainEvent::Delivery(e) => e.to_data(),
        DomainEvent::Coupon(e) => e.to_data(),
    };
    serde_json::to_value(StoredEvent {
        data,
        ..current.clone()
    })
    .expect("an envelope serialises")
}

/// `OrderPlaced-v2.json` or `OrderPlaced-v2.<variant>.json` → (`OrderPlaced`, 2).
fn sample_key(file_name: &str) -> Option<(&str, u32)> {
    let stem = file_name.strip_suffix(".json")?;
    let stem = stem.split_once('.').map_or(stem, |(stem, _variant)| stem);
    let (event_type, version) = stem.rsplit_once("-v")?;
    Some((event_type, version.parse().ok()?))
}

fn samples() -> Vec<(String, Value)> {
    json_files(&samples_dir())
        .into_iter()
        .map(|(name, path)| (name, read_json(&path)))
        .collect()
}

#[test]
fn the_checked_in_schemas_are_what_the_rust_types_generate() {
    bless_if_asked();
    let contracts = contracts();
    let dir = schemas_dir();
    let files = json_files(&dir);
    let expected: BTreeSet<String> = contracts.iter().map(EventContract::file_name).collect();
    let present: BTreeSet<String> = files.keys().cloned().collect();
    assert_eq!(
        present, expected,
        "schemas/events/ holds exactly one file per event type and schema version; run `{REGENERATE}`"
    );
    for contract in &contracts {
        let path = &files[&contract.file_name()];
        let checked_in = std::fs::read_to_string(path).expect("reading a schema");
        assert!(
            checked_in == schema_text(contract),
            "schemas/events/{} is not what the Rust types generate now: run `{REGENERATE}` and \
             review the diff; a change that could break a consumer (a field removed or renamed, a \
             tighter rule) needs a new schema version and an upcaster instead \
             (docs/event-contracts.md)",
            contract.file_name()
        );
    }
}

#[test]
fn every_event_type_has_one_published_version_and_every_upcast_version_a_contract() {
    let contracts = contracts();
    let every_event_type = [
        OrderEvent::SCHEMAS,
        DeliveryEvent::SCHEMAS,
        CouponEvent::SCHEMAS,
    ]
    .concat();
    for (event_type, current) in every_event_type {
        let published: Vec<u32> = contracts
            .iter()
            .filter(|c| c.event_type == event_type && c.published)
            .map(|c| c.schema_version)
            .collect();
        assert_eq!(published, [current], "{event_type}");
        for version in 1..current {
            assert!(
                contract_of(&contracts, event_type, version).is_some_and(|c| !c.published),
                "{event_type} v{version} can be in the events table: it needs a contract"
            );
        }
    }
    let order_placed_v1 = contract_of(&contracts, "OrderPlaced", 1).expect("OrderPlaced v1");
    assert_eq!(order_placed_v1.source, "orderflow.order");
    assert_eq!(
        order_placed_v1.registry_name(),
        "orderflow.order@OrderPlaced"
    );
    let coupon = contract_of(&contracts, "CouponIssued", 1).expect("CouponIssued v1");
    assert_eq!(coupon.registry_name(), "orderflow.alert@CouponIssued");
}

/// The keywords of JSON Schema draft 4 (validation and core), plus the annotations it ignores. A
/// later draft's keyword (`const`, `$defs`, `examples`, a numeric `exclusiveMinimum` …) would be
/// silently ignored by a draft 4 validator, so none may appear.
const DRAFT_04_KEYWORDS: &[&str] = &[
    "$schema",
    "$ref",
    "id",
    "title",
    "description",
    "default",
    "definitions",
    "type",
    "enum",
    "format",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "items",
    "additionalItems",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "properties",
    "patternProperties",
    "additionalProperties",
    "dependencies",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
];

/// Every keyword used in `schema` that is not draft 4's, with where.
fn foreign_keywords(schema: &Value, at: &str, found: &mut Vec<String>) {
    let Value::Object(object) = schema else {
        return;
    };
    for (key, value) in object {
        let here = format!("{at}/{key}");
        if !DRAFT_04_KEYWORDS.contains(&key.as_str()) {
            found.push(here.clone());
        }
        match key.as_str() {
            "properties" | "patternProperties" | "definitions" => {
                for (name, subschema) in value.as_object().into_iter().flatten() {
                    foreign_keywords(subschema, &format!("{here}/{name}"), found);
                }
            }
            "allOf" | "anyOf" | "oneOf" | "items" if value.is_array() => {
                for (index, subschema) in value.as_array().into_iter().flatten().enumerate() {
                    foreign_keywords(subschema, &format!("{here}/{index}"), found);
                }
            }
            "items" | "additionalItems" | "additionalProperties" | "not" => {
                foreign_keywords(value, &here, found);
            }
            "exclusiveMaximum" | "exclusiveMinimum" if !value.is_boolean() => {
                found.push(format!("{here} (a number: draft 6 and later)"));
            }
            _ => {}
        }
    }
}

#[test]
fn the_schemas_are_draft_4_and_nothing_later() {
    for contract in contracts() {
        assert_eq!(
            contract.schema["$schema"],
            DRAFT_04,
            "{}",
            contract.file_name()
        );
        assert!(
            jsonschema::draft4::meta::is_valid(&contract.schema),
            "{} is not a valid draft 4 schema",
            contract.file_name()
        );
        let mut found = Vec::new();
        foreign_keywords(&contract.schema, "", &mut found);
        assert!(
            found.is_empty(),
            "{} uses keywords draft 4 does not know: {found:?}",
            contract.file_name()
        );
    }
    let mut found = Vec::new();
    foreign_keywords(
        &json!({"properties": {"a": {"const": 1}, "b": {"exclusiveMinimum": 0}}}),
        "",
        &mut found,
    );
    assert_eq!(
        found,
        [
            "/properties/a/const",
            "/properties/b/exclusiveMinimum (a number: draft 6 and later)"
        ]
    );
}

#[test]
fn the_schemas_fix_the_type_version_and_stream_of_their_event() {
    let contracts = contracts();
    let placed = contract_of(&contracts, "OrderPlaced", 2).expect("OrderPlaced v2");
    let properties = &placed.schema["properties"];
    assert_eq!(properties["event_type"]["enum"], json!(["OrderPlaced"]));
    assert_eq!(properties["schema_version"]["enum"], json!([2]));
    assert_eq!(
        properties["stream_id"]["pattern"],
        "^order#[A-Za-z0-9._-]+$"
    );
    assert_eq!(properties["data"]["$ref"], "#/definitions/OrderPlaced");
    let data = &placed.schema["definitions"]["OrderPlaced"];
    assert_eq!(
        data["required"],
        json!([
            "order_id",
            "customer_id",
            "items",
            "total",
            "currency",
            "delivery_address"
        ])
    );
    assert_eq!(
        data["properties"]["order_id"]["pattern"],
        "^[A-Za-z0-9._-]{1,64}$"
    );
    assert_eq!(data["properties"]["total"]["type"], "integer");
    let v1 = contract_of(&contracts, "OrderPlaced", 1).expect("OrderPlaced v1");
    assert_eq!(
        v1.schema["properties"]["data"]["$ref"],
        "#/definitions/OrderPlacedV1"
    );
    let line = &v1.schema["definitions"]["LineItemV1"]["properties"];
    assert_eq!(line["unit_price_cents"]["minimum"], 1);
    assert!(line.get("unit_price").is_none());
}

#[test]
fn every_sample_validates_and_reads_through_the_code_that_reads_the_bus() {
    let contracts = contracts();
    let samples = samples();
    let mut covered = BTreeSet::new();
    for (name, sample) in &samples {
        let (event_type, version) = sample_key(name).unwrap_or_else(|| {
            panic!("schemas/samples/{name}: name it <EventType>-v<N>[.<variant>].json")
        });
        let contract = contract_of(&contracts, event_type, version).unwrap_or_else(|| {
            panic!("schemas/samples/{name}: no contract for {event_type} v{version}")
        });
        covered.insert(contract.file_name());
        assert_eq!(sample["event_type"], event_type, "{name}");
        assert_eq!(sample["schema_version"], version, "{name}");
        if let Some(errors) = schema_errors(contract, sample) {
            panic!(
                "schemas/samples/{name} does not validate against {}: {errors}",
                contract.file_name()
            );
        }
        let (current, event) = read_by_code(sample).unwrap_or_else(|e| {
            panic!("schemas/samples/{name} validates, but the code refuses it: {e}")
        });
        assert_eq!(event.event_type(), event_type, "{name}");
        let again = written_again(&current, &event);
        if contract.published {
            assert_eq!(
                &again, sample,
                "schemas/samples/{name} is not exactly what the code writes for the event it reads"
            );
        } else {
            let published = contracts
                .iter()
                .find(|c| c.event_type == event_type && c.published)
                .expect("a published version");
            assert_eq!(current.schema_version, published.schema_version, "{name}");
            if let Some(errors) = schema_errors(published, &again) {
                panic!(
                    "schemas/samples/{name} upcast does not validate against {}: {errors}",
                    published.file_name()
                );
            }
        }
    }
    let expected: BTreeSet<String> = contracts.iter().map(EventContract::file_name).collect();
    let missing: Vec<&String> = expected.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "every event type and schema version needs a sample in schemas/samples/; none for {missing:?}"
    );
}

/// Sets `value` at `pointer` (`None`: removes what is there).
fn mutate(instance: &Value, pointer: &str, value: Option<Value>) -> Value {
    let mut changed = instance.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = changed
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("nothing at {parent}"));
    match (parent, value) {
        (Value::Object(object), Some(value)) => {
            object.insert(key.to_owned(), value);
        }
        (Value::Object(object), None) => {
            object.remove(key);
        }
        (Value::Array(array), Some(value)) => {
            array[key.parse::<usize>().expect("an index")] = value;
        }
        (other, _) => panic!("cannot change {pointer} in {other}"),
    }
    changed
}

/// A change to a sample: `Some(value)` sets what is at the JSON pointer, `None` removes it.
type Change = (&'static str, Option<Value>);

fn set(pointer: &'static str, value: Value) -> Change {
    (pointer, Some(value))
}

fn remove(pointer: &'static str) -> Change {
    (pointer, None)
}

/// Whether the contract of `name`'s event type and version accepts `instance`, and why not.
fn check_against(contracts: &[EventContract], name: &str, instance: &Value) -> Option<String> {
    let (event_type, version) = sample_key(name).expect("a sample name");
    let contract = contract_of(contracts, event_type, version).expect("a contract");
    schema_errors(contract, instance)
}

#[test]
fn schema_and_code_refuse_the_same_broken_events_and_accept_the_same_edge_cases() {
    let contracts = contracts();
    let samples: BTreeMap<String, Value> = samples().into_iter().collect();
    let long = |n: usize| json!("a".repeat(n));
    let (accepted, refused) = (true, false);
    let cases: Vec<(&str, Vec<(Change, bool)>)> = vec![
        (
            "OrderPlaced-v2.json",
            vec![
                (set("/data/items/0/quantity", json!(0)), refused),
                (set("/data/items/0/quantity", json!(1_001)), refused),
                (set("/data/items/0/quantity", json!(1_000)), accepted),
                (set("/data/items/0/quantity", json!(1.5)), refused),
                (set("/data/items/0/unit_price", json!(0)), refused),
                (set("/data/items/0/unit_price", json!(100_000_001)), refused),
                (set("/data/total", json!(-1)), refused),
                (set("/data/total", json!(44.97)), refused),
                (set("/data/total", json!("4497")), refused),
                (set("/data/currency", json!("XXX")), refused),
                (set("/data/currency", json!("JPY")), accepted),
                (remove("/data/currency"), refused),
                (set("/data/order_id", json!("a b")), refused),
                (set("/data/order_id", json!("order#1")), refused),
                (set("/data/order_id", long(65)), refused),
                (set("/data/order_id", long(64)), accepted),
                (set("/data/order_id", json!("")), refused),
                (set("/data/items/0/sku", json!("../etc")), refused),
                (remove("/data/delivery_address"), refused),
                (set("/data/delivery_address/country", json!("de")), refused),
                (set("/data/delivery_address/country", json!("DEU")), refused),
                (set("/data/delivery_address/postal_code", long(17)), refused),
                (
                    set("/data/delivery_address/postal_code", long(16)),
                    accepted,
                ),
                (set("/data/delivery_address/recipient", json!("")), refused),
                (set("/data/delivery_address/city", long(201)), refused),
                (remove("/data/delivery_address/line2"), accepted),
                (set("/data/delivery_address/line2", json!(7)), refused),
                (set("/schema_version", json!(3)), refused),
                (set("/event_type", json!("OrderBeamed")), refused),
                (set("/occurred_at", json!("yesterday")), refused),
                (set("/data", json!([])), refused),
            ],
        ),
        (
            "OrderPlaced-v1.json",
            vec![
                (remove("/data/total_cents"), refused),
                (set("/data/items/0/unit_price_cents", json!(0)), refused),
                (set("/data/items/1/quantity", json!(0)), refused),
            ],
        ),
        (
            "OrderCancelled-v1.json",
            vec![
                (set("/data/reason/kind", json!("lost_interest")), refused),
                (
                    set("/data/reason", json!({"kind": "delivery_failed"})),
                    refused,
                ),
                (
                    set(
                        "/data/reason",
                        json!({"kind": "delivery_failed", "detail": "x"}),
                    ),
                    accepted,
                ),
            ],
        ),
        (
            "DeliveryCancellationRefused-v1.json",
            vec![
                (set("/data/status", json!("teleported")), refused),
                (set("/data/status", json!("completed")), accepted),
            ],
        ),
        (
            "DeliveryDelayed-v1.json",
            vec![
                (set("/data/new_eta", json!("soon")), refused),
                (set("/data/delay_number", json!(-1)), refused),
            ],
        ),
        (
            "CouponIssued-v1.json",
            vec![
                (set("/data/discount_percent", json!(256)), refused),
                (set("/data/discount_percent", json!(255)), accepted),
                (set("/data/delivery_id", long(67)), refused),
                (set("/data/delivery_id", long(66)), accepted),
            ],
        ),
    ];
    for (name, changes) in cases {
        let sample = samples
            .get(name)
            .unwrap_or_else(|| panic!("no sample {name}"));
        for ((pointer, value), expected) in changes {
            let changed = mutate(sample, pointer, value.clone());
            let by_schema = check_against(&contracts, name, &changed);
            let by_code = read_by_code(&changed).err();
            let case = format!("{name} with {pointer} = {value:?}");
            assert_eq!(
                by_schema.is_none(),
                expected,
                "{case}: the schema says {by_schema:?}"
            );
            assert_eq!(
                by_code.is_none(),
                expected,
                "{case}: the code says {by_code:?}"
            );
        }
    }

    // The envelope's text fields are not checked when read (the store trusts what it wrote), so
    // there the schema is stricter than the reader: it states what orderflow writes.
    let placed = &samples["OrderPlaced-v2.json"];
    for (pointer, value) in [
        set("/correlation_id", json!("a b")),
        set("/actor", json!("cust-42")),
        set("/stream_id", json!("delivery#d-1")),
        set("/version", json!(0)),
    ] {
        let changed = mutate(placed, pointer, value.clone());
        let case = format!("OrderPlaced-v2.json with {pointer} = {value:?}");
        assert!(
            check_against(&contracts, "OrderPlaced-v2.json", &changed).is_some(),
            "{case}: the schema accepts it"
        );
        assert!(
            read_by_code(&changed).is_ok(),
            "{case}: the code refuses it"
        );
    }
}

// ---------------------------------------------------------------- template.yaml

const TEMPLATE_BEGIN: &str = "  # BEGIN event contracts";
const TEMPLATE_END: &str = "  # END event contracts";

/// The template's registry block, generated from the contracts: the stage's registry and one
/// schema per published event type, its content the checked-in file.
fn template_block(contracts: &[EventContract]) -> String {
    let mut lines: Vec<String> = [
        &format!("{TEMPLATE_BEGIN} (generated by `{REGENERATE}`: change the Rust types, not this)"),
        "  # The JSON Schema (draft 4) of the EventBridge detail of every event type orderflow publishes,",
        "  # in the stage's schema registry, for other teams to find and generate bindings from. Each",
        "  # Content is schemas/events/<EventType>-v<N>.json of the published version",
        "  # (docs/event-contracts.md).",
        "  EventSchemaRegistry:",
        "    Type: AWS::EventSchemas::Registry",
        "    Properties:",
        "      RegistryName: !Sub \"orderflow-${Stage}-events\"",
        "      Description: The events orderflow publishes on its bus, one schema per detail-type",
    ]
    .map(str::to_owned)
    .to_vec();
    for contract in contracts.iter().filter(|c| c.published) {
        lines.extend([
            String::new(),
            format!("  {}EventSchema:", contract.event_type),
            "    Type: AWS::EventSchemas::Schema".to_owned(),
            "    Properties:".to_owned(),
            "      RegistryName: !GetAtt EventSchemaRegistry.RegistryName".to_owned(),
            format!("      SchemaName: {}", contract.registry_name()),
            "      Type: JSONSchemaDraft4".to_owned(),
            format!(
                "      Description: {} at schema version {} (schemas/events/{})",
                contract.event_type,
                contract.schema_version,
                contract.file_name()
            ),
            "      Content: |".to_owned(),
        ]);
        lines.extend(
            schema_text(contract)
                .lines()
                .map(|line| format!("        {line}")),
        );
    }
    lines.push(TEMPLATE_END.to_owned());
    let mut block = lines.join("\n");
    block.push('\n');
    block
}

/// The template's text before, in and after its registry block.
fn split_template(text: &str) -> (&str, &str, &str) {
    let begin = text
        .find(TEMPLATE_BEGIN)
        .unwrap_or_else(|| panic!("template.yaml has no `{TEMPLATE_BEGIN}` line after the bus"));
    let end = text[begin..]
        .find(TEMPLATE_END)
        .map(|offset| begin + offset)
        .unwrap_or_else(|| panic!("template.yaml has no `{TEMPLATE_END}` line"));
    let after = text[end..].find('\n').map_or(text.len(), |n| end + n + 1);
    (&text[..begin], &text[begin..after], &text[after..])
}

#[test]
fn the_template_registers_every_published_contract_with_its_checked_in_content() {
    bless_if_asked();
    let contracts = contracts();
    let text = std::fs::read_to_string(workspace_root().join("template.yaml"))
        .expect("reading template.yaml");
    let (_, block, _) = split_template(&text);
    assert!(
        block == template_block(&contracts),
        "template.yaml's event contracts are not the generated ones: run `{REGENERATE}`"
    );

    // What CloudFormation reads from it: the content of each schema is the checked-in file.
    let template: serde_norway::Value =
        serde_norway::from_str(&text).expect("template.yaml is YAML");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let of_type = |kind: &str| -> Vec<(&str, &serde_norway::Value)> {
        resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(kind))
            .map(|(id, r)| (id.as_str().expect("a logical id"), &r["Properties"]))
            .collect()
    };
    let registries = of_type("AWS::EventSchemas::Registry");
    assert_eq!(registries.len(), 1, "one registry per stage");
    let registered = of_type("AWS::EventSchemas::Schema");
    let published: Vec<&EventContract> = contracts.iter().filter(|c| c.published).collect();
    assert_eq!(
        registered.len(),
        published.len(),
        "one schema per published event type"
    );
    for contract in published {
        let (id, properties) = registered
            .iter()
            .find(|(_, p)| p["SchemaName"].as_str() == Some(&contract.registry_name()))
            .unwrap_or_else(|| panic!("{} is not registered", contract.registry_name()));
        assert_eq!(
            properties["Type"].as_str(),
            Some("JSONSchemaDraft4"),
            "{id}"
        );
        let content = properties["Content"].as_str().expect("Content is a string");
        let file = std::fs::read_to_string(schemas_dir().join(contract.file_name()))
            .expect("reading a schema");
        assert_eq!(
            content,
            file,
            "{id}: Content is not schemas/events/{}",
            contract.file_name()
        );
        let registry = match &properties["RegistryName"] {
            serde_norway::Value::Tagged(tagged) => tagged.value.as_str().map(str::to_owned),
            _ => None,
        };
        assert_eq!(
            registry.as_deref(),
            Some(&*format!("{}.RegistryName", registries[0].0)),
            "{id}"
        );
    }
}
