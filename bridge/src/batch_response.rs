//! Reading a function's partial batch response (`{"batchItemFailures": [{"itemIdentifier": …}]}`)
//! with Lambda's rules, for both SQS (message ids) and DynamoDB streams (sequence numbers):
//!
//! - complete success: `null`, `{}`, no or `null` or empty `batchItemFailures`;
//! - complete failure: any other shape — a response that is not an object, an entry without an
//!   `itemIdentifier`, an empty one, or one that names no record of the batch;
//! - otherwise exactly the named records failed.

use serde_json::Value;

/// What a batch response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Every record succeeded.
    AllSucceeded,
    /// These records (indices into the batch, ascending, at least one) failed.
    Failed(Vec<usize>),
    /// The response is invalid: the whole batch failed, for this reason.
    Invalid(String),
}

impl BatchVerdict {
    /// The first failed index (0 for an invalid response), or `None` when all succeeded.
    pub fn first_failed(&self) -> Option<usize> {
        match self {
            Self::AllSucceeded => None,
            Self::Failed(indices) => indices.first().copied(),
            Self::Invalid(_) => Some(0),
        }
    }
}

/// Reads `response` for a batch whose records have `identifiers` (in batch order).
pub fn parse_batch_response(response: &Value, identifiers: &[&str]) -> BatchVerdict {
    let failures = match response {
        Value::Null => return BatchVerdict::AllSucceeded,
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchVerdict::AllSucceeded,
            Some(Value::Array(failures)) => failures,
            Some(other) => {
                return BatchVerdict::Invalid(format!("batchItemFailures is {other}"));
            }
        },
        other => return BatchVerdict::Invalid(format!("the response is not an object: {other}")),
    };
    let mut indices = Vec::with_capacity(failures.len());
    for failure in failures {
        let Some(identifier) = failure.get("itemIdentifier").and_then(Value::as_str) else {
            return BatchVerdict::Invalid(format!(
                "a failure without an itemIdentifier: {failure}"
            ));
        };
        if identifier.is_empty() {
            return BatchVerdict::Invalid("an empty itemIdentifier".into());
        }
        let Some(index) = identifiers.iter().position(|id| *id == identifier) else {
            return BatchVerdict::Invalid(format!(
                "itemIdentifier {identifier:?} is not in the batch"
            ));
        };
        indices.push(index);
    }
    indices.sort_unstable();
    indices.dedup();
    if indices.is_empty() {
        BatchVerdict::AllSucceeded
    } else {
        BatchVerdict::Failed(indices)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const IDS: &[&str] = &["a", "b", "c"];

    #[test]
    fn empty_answers_mean_complete_success() {
        for response in [
            Value::Null,
            json!({}),
            json!({"batchItemFailures": null}),
            json!({"batchItemFailures": []}),
        ] {
            assert_eq!(
                parse_batch_response(&response, IDS),
                BatchVerdict::AllSucceeded,
                "{response}"
            );
        }
    }

    #[test]
    fn named_records_fail_in_batch_order() {
        let response = json!({"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "b"}, {"itemIdentifier": "c"}]});
        let verdict = parse_batch_response(&response, IDS);
        assert_eq!(verdict, BatchVerdict::Failed(vec![1, 2]));
        assert_eq!(verdict.first_failed(), Some(1));
    }

    #[test]
    fn malformed_answers_fail_the_whole_batch() {
        for response in [
            json!("ok"),
            json!([1]),
            json!({"batchItemFailures": "a"}),
            json!({"batchItemFailures": [{"id": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]}),
        ] {
            let verdict = parse_batch_response(&response, IDS);
            assert!(matches!(verdict, BatchVerdict::Invalid(_)), "{response}");
            assert_eq!(verdict.first_failed(), Some(0));
        }
    }
}
