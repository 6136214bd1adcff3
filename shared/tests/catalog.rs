//! The event catalog against `events/hub/`: every type has a sample and a JSON Schema,
//! the samples are what the code emits, and no file describes a type the code lacks.

use std::{collections::BTreeSet, path::PathBuf};

use serde_json::Value;
use shared::events::{EventPayload, HubEvent};

fn hub_events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events/hub")
}

fn read(name: &str) -> Value {
    let path = hub_events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).expect("a valid JSON Schema")
}

#[test]
fn every_event_type_has_a_sample_that_its_schema_and_the_code_accept() {
    let envelope = validator(&read("hub-event.schema.json"));
    for &detail_type in EventPayload::TYPES {
        let sample = read(&format!("{detail_type}.json"));
        let schema = validator(&read(&format!("{detail_type}.schema.json")));
        assert_eq!(sample["detail-type"], detail_type);
        let errors: Vec<String> = envelope
            .iter_errors(&sample)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{detail_type} envelope: {errors:?}");
        let detail = &sample["detail"];
        let errors: Vec<String> = schema.iter_errors(detail).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{detail_type} detail: {errors:?}");
        // The sample is exactly what the code reads and writes.
        let event: HubEvent = serde_json::from_value(detail.clone())
            .unwrap_or_else(|e| panic!("{detail_type}: the code refuses its sample: {e}"));
        assert_eq!(event.detail_type(), detail_type);
        assert_eq!(
            &serde_json::to_value(&event).unwrap(),
            detail,
            "{detail_type}"
        );
    }
}

#[test]
fn a_schema_refuses_another_types_payload() {
    let schema = validator(&read("installation.ready.schema.json"));
    let other = read("account.deleted.json");
    assert!(!schema.is_valid(&other["detail"]));
}

#[test]
fn no_sample_or_schema_for_a_type_the_catalog_lacks() {
    let known: BTreeSet<&str> = EventPayload::TYPES.iter().copied().collect();
    for entry in std::fs::read_dir(hub_events_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "hub-event.schema.json" {
            continue;
        }
        let detail_type = name
            .strip_suffix(".schema.json")
            .or_else(|| name.strip_suffix(".json"))
            .unwrap_or(&name);
        assert!(
            known.contains(detail_type),
            "events/hub/{name} describes no type of the catalog"
        );
    }
}
