//! The record of what the proxy did: the journal (one JSON line per injected fault, appended to
//! `--journal FILE` and flushed line by line, so a soak's audit can read it while the proxy runs
//! and after it is killed) and the counters (requests and faults by service and kind, served on
//! `GET /chaos/stats` and printed at exit).
//!
//! A journal line never holds a request body. The one exception is deliberate and narrow: for an
//! SNS `Publish` it holds the message attributes (`event_id`, `customer_id`, …), so the audit can
//! tell which notification had its answer lost; the message itself is never written.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::classify::{Call, form_fields};
use super::fault::FaultKind;

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// The request's service.
    pub service: String,
    /// Its operation, when known.
    pub operation: Option<String>,
    /// What was done.
    pub kind: FaultKind,
    /// The status injected (error, throttle, unavailable) or dropped (lost).
    pub status: Option<u16>,
    /// An SNS `Publish`'s message attributes, name to string value.
    pub attributes: Option<BTreeMap<String, String>>,
}

impl JournalEntry {
    /// An entry for `call`, now; the SNS `Publish` attributes read from `body`.
    pub fn new(call: &Call, kind: FaultKind, body: &[u8]) -> Self {
        let publish = call.service == "sns" && call.operation.as_deref() == Some("Publish");
        Self {
            at: Utc::now(),
            service: call.service.clone(),
            operation: call.operation.clone(),
            kind,
            status: None,
            attributes: publish.then(|| sns_message_attributes(body)),
        }
    }

    /// Its JSON line (without the newline).
    pub fn to_json(&self) -> Value {
        let mut line = Map::new();
        line.insert(
            "at".into(),
            self.at.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
        );
        line.insert("service".into(), self.service.clone().into());
        line.insert(
            "operation".into(),
            self.operation.clone().map_or(Value::Null, Value::from),
        );
        line.insert("kind".into(), self.kind.name().into());
        if let Some(status) = self.status {
            line.insert("status".into(), status.into());
        }
        if let Some(attributes) = &self.attributes {
            line.insert("attributes".into(), json!(attributes));
        }
        Value::Object(line)
    }
}

/// The string message attributes of an SNS `Publish` form body:
/// `MessageAttributes.entry.N.Name` → `MessageAttributes.entry.N.Value.StringValue`.
pub fn sns_message_attributes(body: &[u8]) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (field, value) in form_fields(body) {
        let Some(entry) = field.strip_prefix("MessageAttributes.entry.") else {
            continue;
        };
        if let Some(index) = entry.strip_suffix(".Name") {
            names.insert(index.to_owned(), value);
        } else if let Some(index) = entry.strip_suffix(".Value.StringValue") {
            values.insert(index.to_owned(), value);
        }
    }
    names
        .into_iter()
        .filter_map(|(index, name)| values.remove(&index).map(|value| (name, value)))
        .collect()
}

/// The journal file, or nowhere.
#[derive(Debug)]
pub struct Journal {
    file: Option<Mutex<LineWriter<File>>>,
}

impl Journal {
    /// Appends to `path` (created when missing); `None` journals nothing.
    pub fn open(path: Option<&Path>) -> io::Result<Self> {
        let file = match path {
            None => None,
            Some(path) => Some(Mutex::new(LineWriter::new(
                OpenOptions::new().create(true).append(true).open(path)?,
            ))),
        };
        Ok(Self { file })
    }

    /// Writes `entry` as one line.
    pub fn record(&self, entry: &JournalEntry) {
        let Some(file) = &self.file else { return };
        let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = writeln!(file, "{}", entry.to_json()) {
            tracing::warn!(%error, "could not write the journal");
        }
    }

    /// Flushes what is buffered.
    pub fn flush(&self) -> io::Result<()> {
        match &self.file {
            None => Ok(()),
            Some(file) => file
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .flush(),
        }
    }
}

/// Requests and faults counted by service and kind.
#[derive(Debug, Default)]
pub struct Stats {
    services: Mutex<BTreeMap<String, ServiceCounts>>,
}

#[derive(Debug, Default, Clone)]
struct ServiceCounts {
    requests: u64,
    faults: BTreeMap<FaultKind, u64>,
}

impl Stats {
    /// Counts a request to `service`.
    pub fn request(&self, service: &str) {
        self.with(service, |counts| counts.requests += 1);
    }

    /// Counts a fault injected into a request to `service`.
    pub fn fault(&self, service: &str, kind: FaultKind) {
        self.with(service, |counts| {
            *counts.faults.entry(kind).or_default() += 1
        });
    }

    fn with(&self, service: &str, change: impl FnOnce(&mut ServiceCounts)) {
        let mut services = self
            .services
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(services.entry(service.to_owned()).or_default());
    }

    fn snapshot(&self) -> BTreeMap<String, ServiceCounts> {
        self.services
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// `{"requests": {"dynamodb": 12, …, "total": 20}, "faults": {"dynamodb": {"lost": 1, …},
    /// …, "total": {"lost": 1, …}}}`.
    pub fn to_json(&self) -> Value {
        let services = self.snapshot();
        let mut requests = Map::new();
        let mut faults = Map::new();
        let mut total_requests = 0;
        let mut total_faults: BTreeMap<&str, u64> = BTreeMap::new();
        for (service, counts) in &services {
            requests.insert(service.clone(), counts.requests.into());
            total_requests += counts.requests;
            let by_kind: BTreeMap<&str, u64> =
                counts.faults.iter().map(|(k, n)| (k.name(), *n)).collect();
            for (kind, n) in &by_kind {
                *total_faults.entry(kind).or_default() += n;
            }
            if !by_kind.is_empty() {
                faults.insert(service.clone(), json!(by_kind));
            }
        }
        requests.insert("total".into(), total_requests.into());
        faults.insert("total".into(), json!(total_faults));
        json!({"requests": requests, "faults": faults})
    }

    /// The counters as lines for a person: one per service, then the totals.
    pub fn summary(&self) -> String {
        let services = self.snapshot();
        let describe = |faults: &BTreeMap<FaultKind, u64>| {
            if faults.is_empty() {
                return "no faults".to_owned();
            }
            faults
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = Vec::new();
        let mut total = ServiceCounts::default();
        for (service, counts) in &services {
            lines.push(format!(
                "  {service}: {} requests; {}",
                counts.requests,
                describe(&counts.faults)
            ));
            total.requests += counts.requests;
            for (kind, n) in &counts.faults {
                *total.faults.entry(*kind).or_default() += n;
            }
        }
        lines.push(format!(
            "  total: {} requests; {}",
            total.requests,
            describe(&total.faults)
        ));
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::chaos::classify::Protocol;

    const PUBLISH: &[u8] = b"Action=Publish&Version=2010-03-31\
        &TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Anotify\
        &Message=Your%20order%20is%20on%20its%20way%20to%2012%20Main%20St\
        &MessageAttributes.entry.1.Name=event_id\
        &MessageAttributes.entry.1.Value.DataType=String\
        &MessageAttributes.entry.1.Value.StringValue=0190-ab\
        &MessageAttributes.entry.2.Name=customer_id\
        &MessageAttributes.entry.2.Value.DataType=String\
        &MessageAttributes.entry.2.Value.StringValue=cust%2B42";

    fn publish() -> Call {
        Call {
            service: "sns".into(),
            operation: Some("Publish".into()),
            protocol: Protocol::Query,
        }
    }

    #[test]
    fn a_publish_line_names_its_attributes_but_not_its_message() {
        let mut entry = JournalEntry::new(&publish(), FaultKind::Lost, PUBLISH);
        entry.at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap();
        entry.status = Some(200);
        let line = entry.to_json().to_string();
        // Compared as JSON: the key order depends on serde_json's features in the build.
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"at":"2026-12-01T09:30:00.000Z","attributes":{"customer_id":"cust+42","event_id":"0190-ab"},"kind":"lost","operation":"Publish","service":"sns","status":200})
        );
        assert!(!line.contains("Main St"));
    }

    #[test]
    fn other_lines_hold_no_body() {
        let call = Call {
            service: "sqs".into(),
            operation: Some("SendMessage".into()),
            protocol: Protocol::Json {
                content_type: "application/x-amz-json-1.0".into(),
            },
        };
        let entry = JournalEntry::new(&call, FaultKind::Reset, br#"{"MessageBody":"secret"}"#);
        let line = entry.to_json();
        assert_eq!(line["kind"], "reset");
        assert!(line.get("status").is_none() && line.get("attributes").is_none());
        assert!(!line.to_string().contains("secret"));
    }

    #[test]
    fn the_journal_appends_one_line_per_entry() {
        let path =
            std::env::temp_dir().join(format!("chaos-journal-{}.jsonl", uuid::Uuid::new_v4()));
        let journal = Journal::open(Some(&path)).unwrap();
        journal.record(&JournalEntry::new(&publish(), FaultKind::Error, PUBLISH));
        journal.record(&JournalEntry::new(&publish(), FaultKind::Stall, PUBLISH));
        journal.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let kinds: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds, ["error", "stall"]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn stats_count_by_service_and_kind() {
        let stats = Stats::default();
        stats.request("dynamodb");
        stats.request("dynamodb");
        stats.request("sns");
        stats.fault("dynamodb", FaultKind::Lost);
        stats.fault("sns", FaultKind::Lost);
        stats.fault("sns", FaultKind::Error);
        assert_eq!(
            stats.to_json(),
            json!({
                "requests": {"dynamodb": 2, "sns": 1, "total": 3},
                "faults": {
                    "dynamodb": {"lost": 1},
                    "sns": {"error": 1, "lost": 1},
                    "total": {"error": 1, "lost": 2},
                },
            })
        );
        assert!(
            stats
                .summary()
                .ends_with("total: 3 requests; error 1, lost 2")
        );
    }
}
