//! Which AWS service and operation a request is for, read the way the services themselves route
//! it: the JSON protocols name both in `X-Amz-Target` (`DynamoDB_20120810.PutItem`); the query
//! protocol (SNS) names the operation in the form body's `Action` and the service in the SigV4
//! credential scope of `Authorization`. Anything else (moto's `/moto-api/`, an unsigned probe) is
//! [`OTHER`], which the proxy never faults.

use http::HeaderMap;

/// The service of a request the proxy cannot place; never faulted.
pub const OTHER: &str = "other";

/// How a service speaks, which decides how an injected error looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// `awsJson1_0` / `awsJson1_1`: JSON bodies, the error type in `__type`; the content type the
    /// request used (`application/x-amz-json-1.0` or `-1.1`), which the answer repeats.
    Json {
        /// The request's content type.
        content_type: String,
    },
    /// `awsQuery`: form-encoded requests, XML answers with `<ErrorResponse>`.
    Query,
    /// Neither (a REST call, a probe).
    Unknown,
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The service, as the SDK's endpoint variables name it: `dynamodb`, `dynamodbstreams`,
    /// `sqs`, `sns`, `events`, `cognito-idp`, another credential-scope name, or [`OTHER`].
    pub service: String,
    /// The operation (`PutItem`, `Publish`), when the request names one.
    pub operation: Option<String>,
    /// Its protocol.
    pub protocol: Protocol,
}

/// The service names of the `X-Amz-Target` prefixes orderflow's clients send.
const TARGET_PREFIXES: [(&str, &str); 5] = [
    ("DynamoDB_20120810", "dynamodb"),
    ("DynamoDBStreams_20120810", "dynamodbstreams"),
    ("AmazonSQS", "sqs"),
    ("AWSEvents", "events"),
    ("AWSCognitoIdentityProviderService", "cognito-idp"),
];

/// Classifies a request from its path, headers and (whole) body.
pub fn classify(path: &str, headers: &HeaderMap, body: &[u8]) -> Call {
    let other = Call {
        service: OTHER.to_owned(),
        operation: None,
        protocol: Protocol::Unknown,
    };
    if path.starts_with("/moto-api") || path.starts_with("/_localstack") {
        return other;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let content_type = header("content-type").unwrap_or_default();
    if let Some(target) = header("x-amz-target") {
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        let service = TARGET_PREFIXES
            .iter()
            .find(|(known, _)| *known == prefix)
            .map(|(_, service)| (*service).to_owned())
            .or_else(|| header("authorization").and_then(scope_service))
            .unwrap_or_else(|| OTHER.to_owned());
        return Call {
            service,
            operation: Some(operation.to_owned()).filter(|o| !o.is_empty()),
            protocol: Protocol::Json {
                content_type: if content_type.is_empty() {
                    "application/x-amz-json-1.0".to_owned()
                } else {
                    content_type.to_owned()
                },
            },
        };
    }
    let Some(service) = header("authorization").and_then(scope_service) else {
        return other;
    };
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let operation = form_fields(body)
            .find(|(name, _)| name == "Action")
            .map(|(_, value)| value);
        return Call {
            service,
            operation,
            protocol: Protocol::Query,
        };
    }
    Call {
        service,
        operation: None,
        protocol: Protocol::Unknown,
    }
}

/// The service of a SigV4 `Authorization` header's credential scope:
/// `AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/sns/aws4_request, …` → `sns`.
fn scope_service(authorization: &str) -> Option<String> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let mut parts = scope.split('/');
    let service = parts.nth(3)?;
    (!service.is_empty()).then(|| service.to_owned())
}

/// The decoded fields of a form-encoded body.
pub fn form_fields(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(body).map(|(name, value)| (name.into_owned(), value.into_owned()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SIGNED_SNS: &str = "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn json_call(target: &str, content_type: &str) -> Call {
        classify(
            "/",
            &headers(&[
                ("x-amz-target", target),
                ("content-type", content_type),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x",
                ),
            ]),
            b"{}",
        )
    }

    #[test]
    fn json_protocols_are_named_by_their_target() {
        for (target, content_type, service, operation) in [
            (
                "DynamoDB_20120810.PutItem",
                "application/x-amz-json-1.0",
                "dynamodb",
                "PutItem",
            ),
            (
                "DynamoDB_20120810.TransactWriteItems",
                "application/x-amz-json-1.0",
                "dynamodb",
                "TransactWriteItems",
            ),
            (
                "DynamoDBStreams_20120810.GetRecords",
                "application/x-amz-json-1.0",
                "dynamodbstreams",
                "GetRecords",
            ),
            (
                "AmazonSQS.ReceiveMessage",
                "application/x-amz-json-1.0",
                "sqs",
                "ReceiveMessage",
            ),
            (
                "AWSEvents.PutEvents",
                "application/x-amz-json-1.1",
                "events",
                "PutEvents",
            ),
            (
                "AWSCognitoIdentityProviderService.InitiateAuth",
                "application/x-amz-json-1.1",
                "cognito-idp",
                "InitiateAuth",
            ),
        ] {
            assert_eq!(
                json_call(target, content_type),
                Call {
                    service: service.into(),
                    operation: Some(operation.into()),
                    protocol: Protocol::Json {
                        content_type: content_type.into()
                    },
                },
                "{target}"
            );
        }
    }

    #[test]
    fn an_unknown_target_falls_back_to_the_credential_scope() {
        let call = json_call("Kinesis_20131202.PutRecord", "application/x-amz-json-1.1");
        assert_eq!(call.service, "dynamodb");
        assert_eq!(call.operation.as_deref(), Some("PutRecord"));
    }

    #[test]
    fn query_protocol_is_named_by_the_scope_and_the_action() {
        let body = b"Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Anotify&Message=hi";
        let call = classify(
            "/",
            &headers(&[
                ("authorization", SIGNED_SNS),
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
            ]),
            body,
        );
        assert_eq!(
            call,
            Call {
                service: "sns".into(),
                operation: Some("Publish".into()),
                protocol: Protocol::Query,
            }
        );
    }

    #[test]
    fn management_paths_and_unsigned_requests_are_other() {
        let signed = headers(&[("authorization", SIGNED_SNS)]);
        assert_eq!(classify("/moto-api/reset", &signed, b"").service, OTHER);
        assert_eq!(classify("/_localstack/health", &signed, b"").service, OTHER);
        assert_eq!(classify("/", &HeaderMap::new(), b"").service, OTHER);
        let garbled = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(classify("/", &garbled, b"").service, OTHER);
        let rest = classify("/2015-03-31/functions", &signed, b"");
        assert_eq!((rest.service.as_str(), rest.operation), ("sns", None));
        assert_eq!(rest.protocol, Protocol::Unknown);
    }
}
