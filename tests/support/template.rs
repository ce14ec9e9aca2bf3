//! `template.yaml` and the function registry (`functions/registry`) agree (docs/architecture.md,
//! "Tests, in layers", layer 5): the template declares exactly the registry's functions, each
//! shipping the one bootstrap, with the environment it reads, the services it uses and the trigger
//! the registry names (routes, the queue of its event type, the events stream, a schedule); every
//! handler queue redrives to a DLQ; every event source mapping has failure handling; every rule
//! target has a DLQ and a retry policy; every DLQ has an alarm; every function has errors and
//! throttles alarms and a log group with retention; every handler queue an age alarm; HTTP routes
//! match the routers; the dashboard shows every metric the functions emit, each function's errors
//! and cold starts, and every alarm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use function_registry::{FUNCTIONS, Trigger};
use serde_norway::Value;

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
}

fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

fn resources(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("a logical id").to_owned(), v.clone()))
        .collect()
}

fn of_type<'a>(resources: &'a BTreeMap<String, Value>, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

/// The logical id a `!Ref X` / `!GetAtt X.Arn` points at.
fn target(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => {
            let inner = tagged.value.as_str()?;
            Some(inner.split('.').next()?.to_owned())
        }
        _ => None,
    }
}

/// The function resource of the registry's `name`: the one whose `Handler` names it.
fn function_resource<'a>(
    resources: &'a BTreeMap<String, Value>,
    name: &str,
) -> Option<(&'a str, &'a Value)> {
    of_type(resources, "AWS::Serverless::Function")
        .into_iter()
        .find(|(_, f)| f["Properties"]["Handler"].as_str() == Some(name))
}

/// The services a function's inline policies name (their actions' prefixes).
fn policy_services(function: &Value) -> BTreeSet<String> {
    let mut services = BTreeSet::new();
    for policy in function["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let statements = policy["Statement"]
            .as_sequence()
            .unwrap_or_else(|| panic!("an inline policy: {policy:?}"));
        for statement in statements {
            let actions = match &statement["Action"] {
                Value::String(action) => vec![action.clone()],
                Value::Sequence(actions) => actions
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                other => panic!("an action list: {other:?}"),
            };
            for action in actions {
                services.insert(action.split(':').next().unwrap_or_default().to_owned());
            }
        }
    }
    services
}

/// The function's events of SAM type `kind`.
fn events_of<'a>(function: &'a Value, kind: &str) -> Vec<&'a Value> {
    function["Properties"]["Events"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, event)| event["Type"].as_str() == Some(kind))
        .map(|(_, event)| &event["Properties"])
        .collect()
}

#[test]
fn the_template_declares_exactly_the_registrys_functions_all_from_one_bootstrap() {
    let resources = resources(&template());
    let declared: BTreeSet<&str> = of_type(&resources, "AWS::Serverless::Function")
        .iter()
        .map(|(id, f)| {
            f["Properties"]["Handler"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has no Handler"))
        })
        .collect();
    let registered: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
    assert_eq!(
        declared, registered,
        "template.yaml's Handlers vs the registry"
    );
    assert_eq!(
        of_type(&resources, "AWS::Serverless::Function").len(),
        FUNCTIONS.len(),
        "one resource per function"
    );
    for function in FUNCTIONS {
        let (id, resource) = function_resource(&resources, function.name).expect("declared");
        // One build for all: SAM builds a CodeUri + Metadata once and copies the artifact.
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert_eq!(
            resource["Metadata"]["BuildProperties"]["Binary"].as_str(),
            Some("orderflow-lambda"),
            "{id}: every function ships the one bootstrap"
        );
        assert_eq!(
            resource["Properties"]["CodeUri"].as_str(),
            Some("."),
            "{id}"
        );
        assert_eq!(
            sub_text(&resource["Properties"]["FunctionName"]),
            Some(format!("orderflow-${{Stage}}-{}", function.name).as_str()),
            "{id}"
        );
    }
}

#[test]
fn each_function_gets_exactly_the_environment_it_reads_and_the_services_it_uses() {
    let resources = resources(&template());
    for function in FUNCTIONS {
        let (id, resource) = function_resource(&resources, function.name).expect("declared");
        let declared: BTreeSet<&str> = resource["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .map(|m| m.keys().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let reads: BTreeSet<&str> = function.env_vars.iter().copied().collect();
        assert_eq!(declared, reads, "{id}: environment");
        let uses: BTreeSet<String> = function
            .services
            .iter()
            .map(|s| s.action_prefix().to_owned())
            .collect();
        assert_eq!(policy_services(resource), uses, "{id}: policies' services");
    }
}

#[test]
fn each_function_is_triggered_as_the_registry_says() {
    let resources = resources(&template());
    let rules = of_type(&resources, "AWS::Events::Rule");
    let mappings = of_type(&resources, "AWS::Lambda::EventSourceMapping");
    for function in FUNCTIONS {
        let (id, resource) = function_resource(&resources, function.name).expect("declared");
        let http = events_of(resource, "HttpApi");
        let sqs = events_of(resource, "SQS");
        let schedules = events_of(resource, "Schedule");
        let streams: Vec<_> = mappings
            .iter()
            .filter(|(_, m)| target(&m["Properties"]["FunctionName"]).as_deref() == Some(id))
            .collect();
        let events = resource["Properties"]["Events"]
            .as_mapping()
            .map_or(0, |m| m.len());
        match function.trigger {
            Trigger::Http { routes } => {
                let declared: BTreeSet<(String, String)> = http
                    .iter()
                    .map(|p| {
                        (
                            p["Method"].as_str().expect("method").to_owned(),
                            p["Path"].as_str().expect("path").to_owned(),
                        )
                    })
                    .collect();
                let served: BTreeSet<(String, String)> = routes
                    .iter()
                    .map(|r| (r.method.to_owned(), r.path.to_owned()))
                    .collect();
                assert_eq!(declared, served, "{id}: routes");
                assert_eq!(events, http.len(), "{id}: only its routes");
                assert!(streams.is_empty(), "{id}");
            }
            Trigger::Queue { event_type } => {
                assert_eq!((sqs.len(), events), (1, 1), "{id}: one queue, nothing else");
                assert!(streams.is_empty(), "{id}");
                let queue = target(&sqs[0]["Queue"]).expect("a queue reference");
                let routing: Vec<&str> = rules
                    .iter()
                    .filter(|(_, rule)| {
                        rule["Properties"]["Targets"]
                            .as_sequence()
                            .into_iter()
                            .flatten()
                            .any(|t| target(&t["Arn"]).as_deref() == Some(queue.as_str()))
                    })
                    .flat_map(|(_, rule)| {
                        rule["Properties"]["EventPattern"]["detail-type"]
                            .as_sequence()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                    })
                    .collect();
                assert_eq!(routing, vec![event_type], "{id}: its queue's rule");
            }
            Trigger::EventsStream => {
                assert_eq!(events, 0, "{id}: only the stream");
                assert_eq!(streams.len(), 1, "{id}: one mapping");
                let source = &streams[0].1["Properties"]["EventSourceArn"];
                assert!(
                    matches!(source, Value::Tagged(t) if t.value.as_str() == Some("EventsTable.StreamArn")),
                    "{id}: reads the events table's stream, not {source:?}"
                );
            }
            Trigger::Schedule => {
                assert_eq!((schedules.len(), events), (1, 1), "{id}: one schedule");
                assert!(streams.is_empty(), "{id}");
            }
        }
    }
}

#[test]
fn every_handler_queue_redrives_to_a_dead_letter_queue_with_an_alarm() {
    let resources = resources(&template());
    let queues = of_type(&resources, "AWS::SQS::Queue");
    let alarmed: BTreeSet<String> = of_type(&resources, "AWS::CloudWatch::Alarm")
        .iter()
        .filter_map(|(_, alarm)| {
            alarm["Properties"]["Dimensions"]
                .as_sequence()?
                .iter()
                .find_map(|d| target(&d["Value"]))
        })
        .collect();
    let dead_letter: BTreeSet<String> = queues
        .iter()
        .filter_map(|(_, q)| target(&q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]))
        .collect();
    let stream_failures: BTreeSet<String> = of_type(&resources, "AWS::Lambda::EventSourceMapping")
        .iter()
        .filter_map(|(_, m)| {
            target(&m["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
        })
        .collect();
    let schedule_dead_letters: BTreeSet<String> = of_type(&resources, "AWS::Serverless::Function")
        .iter()
        .filter_map(|(_, f)| f["Properties"]["Events"].as_mapping().cloned())
        .flat_map(|events| events.into_iter().map(|(_, e)| e))
        .filter_map(|e| target(&e["Properties"]["DeadLetterConfig"]["Arn"]))
        .collect();
    let poison = poison_queues(&resources);
    let invoke_failures = invoke_failure_queues(&resources);
    for (id, queue) in &queues {
        let is_dlq = dead_letter.contains(*id)
            || stream_failures.contains(*id)
            || schedule_dead_letters.contains(*id)
            || poison.contains(*id)
            || invoke_failures.contains(*id);
        if is_dlq {
            assert!(
                alarmed.contains(*id),
                "{id}: a dead-letter queue without an alarm"
            );
            assert_eq!(
                queue["Properties"]["MessageRetentionPeriod"].as_u64(),
                Some(1_209_600),
                "{id}: dead letters are kept 14 days"
            );
        } else {
            let redrive = &queue["Properties"]["RedrivePolicy"];
            assert!(
                target(&redrive["deadLetterTargetArn"]).is_some(),
                "{id} has no DLQ"
            );
            assert!(
                redrive["maxReceiveCount"]
                    .as_u64()
                    .is_some_and(|n| (1..=10).contains(&n)),
                "{id}"
            );
            // Visibility timeout at least 6× the function timeout (10 s by default).
            assert!(
                queue["Properties"]["VisibilityTimeout"]
                    .as_u64()
                    .is_some_and(|v| v >= 60),
                "{id}: visibility timeout below 6× the function timeout"
            );
        }
    }
}

#[test]
fn every_event_source_mapping_has_failure_handling() {
    let resources = resources(&template());
    let mappings = of_type(&resources, "AWS::Lambda::EventSourceMapping");
    assert_eq!(
        mappings.len(),
        2,
        "two readers of the events stream, no more"
    );
    for (id, mapping) in mappings {
        let p = &mapping["Properties"];
        assert_eq!(
            p["FunctionResponseTypes"][0].as_str(),
            Some("ReportBatchItemFailures"),
            "{id}"
        );
        assert_eq!(
            p["BisectBatchOnFunctionError"].as_bool(),
            Some(true),
            "{id}"
        );
        // The retry budget (README, "Failure handling"): transient failures are retried without a
        // count limit until the record is 6 hours old, leaving 18 of the stream's 24 hours to read
        // back what was given up; poison never retries (the functions set it aside).
        assert_eq!(p["MaximumRetryAttempts"].as_i64(), Some(-1), "{id}");
        assert_eq!(
            p["MaximumRecordAgeInSeconds"].as_i64(),
            Some(6 * 3600),
            "{id}"
        );
        assert!(
            target(&p["DestinationConfig"]["OnFailure"]["Destination"]).is_some(),
            "{id}"
        );
    }
    for (id, function) in of_type(&resources, "AWS::Serverless::Function") {
        let Some(events) = function["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (name, event) in events {
            if event["Type"].as_str() == Some("SQS") {
                assert_eq!(
                    event["Properties"]["FunctionResponseTypes"][0].as_str(),
                    Some("ReportBatchItemFailures"),
                    "{id}.{name:?}"
                );
            }
        }
    }
}

#[test]
fn every_schedule_has_a_dead_letter_queue_and_a_retry_policy() {
    let resources = resources(&template());
    let mut schedules = 0;
    for (id, function) in of_type(&resources, "AWS::Serverless::Function") {
        for (name, event) in function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if event["Type"].as_str() == Some("Schedule") {
                schedules += 1;
                let p = &event["Properties"];
                assert!(
                    target(&p["DeadLetterConfig"]["Arn"]).is_some(),
                    "{id}.{name:?}"
                );
                assert!(
                    p["RetryPolicy"]["MaximumRetryAttempts"].as_u64().is_some(),
                    "{id}.{name:?}"
                );
            }
        }
    }
    assert_eq!(schedules, 1, "the overdue check");
}

#[test]
fn every_rule_target_has_a_dead_letter_queue_and_a_retry_policy() {
    let resources = resources(&template());
    let rules = of_type(&resources, "AWS::Events::Rule");
    assert!(!rules.is_empty());
    for (id, rule) in rules {
        for target_def in rule["Properties"]["Targets"]
            .as_sequence()
            .expect("targets")
        {
            assert!(
                target(&target_def["DeadLetterConfig"]["Arn"]).is_some(),
                "{id}"
            );
            assert!(
                target_def["RetryPolicy"]["MaximumRetryAttempts"]
                    .as_u64()
                    .is_some(),
                "{id}"
            );
        }
    }
}

#[test]
fn no_policy_grants_every_action() {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template");
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        assert!(
            !(line.starts_with("- ") && line.ends_with(":*")
                || line == "- \"*\""
                || line == "Action: \"*\""),
            "template.yaml:{}: a wildcard action: {line}",
            n + 1
        );
    }
}

/// What each operation of an OpenAPI document (`functions/…/openapi.json`) requires:
/// (METHOD, path) → the scopes of its security requirement (the operation's, else the document's),
/// each of a scheme that describes a Cognito access token sent as `Authorization: Bearer`.
fn documented_scopes(relative: &str) -> BTreeMap<(String, String), BTreeSet<String>> {
    let text = std::fs::read_to_string(workspace_root().join(relative)).expect("the document");
    let document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let schemes = &document["components"]["securitySchemes"];
    let mut scopes = BTreeMap::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let requirements = operation
                .get("security")
                .unwrap_or(&document["security"])
                .as_array()
                .unwrap_or_else(|| panic!("{relative}: {method} {path} has no security"));
            assert_eq!(
                requirements.len(),
                1,
                "{relative}: {method} {path}: one way in, the Cognito access token"
            );
            let requirement = requirements[0].as_object().expect("a requirement");
            assert_eq!(requirement.len(), 1, "{relative}: {method} {path}");
            let (scheme, required) = requirement.iter().next().expect("one scheme");
            assert!(
                matches!(
                    schemes[scheme]["type"].as_str(),
                    Some("openIdConnect" | "oauth2")
                ),
                "{relative}: {scheme} is not a token scheme with scopes"
            );
            assert!(
                schemes[scheme]["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("Authorization: Bearer")),
                "{relative}: {scheme} does not say how the token is sent"
            );
            let required = required
                .as_array()
                .expect("scopes")
                .iter()
                .map(|s| s.as_str().expect("a scope").to_owned())
                .collect();
            scopes.insert((method.to_uppercase(), path.clone()), required);
        }
    }
    scopes
}

#[test]
fn the_api_authorizes_every_route_as_the_openapi_documents_say() {
    let template = template();
    let resources = resources(&template);
    let apis = of_type(&resources, "AWS::Serverless::HttpApi");
    assert_eq!(apis.len(), 1, "one HTTP API");
    let (api_id, api) = apis[0];

    // The default authorizer: Cognito's JWTs, from the Authorization header, issued by the pool to
    // the app client.
    let auth = &api["Properties"]["Auth"];
    let default = auth["DefaultAuthorizer"]
        .as_str()
        .expect("a default authorizer");
    let authorizer = &auth["Authorizers"][default];
    assert_eq!(
        authorizer["IdentitySource"].as_str(),
        Some("$request.header.Authorization"),
        "{default}"
    );
    let jwt = &authorizer["JwtConfiguration"];
    let Value::Tagged(issuer) = &jwt["issuer"] else {
        panic!("{default}: the issuer is not a !Sub");
    };
    assert!(issuer.tag == "Sub", "{default}: the issuer is not a !Sub");
    let issuer = issuer.value.as_str().expect("the issuer");
    let pool_issuer = "https://cognito-idp.${AWS::Region}.amazonaws.com/";
    let pool = issuer
        .strip_prefix(pool_issuer)
        .and_then(|rest| rest.strip_prefix("${"))
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("{default}: issuer {issuer} is not a user pool's"));
    let audience: Vec<Option<String>> = jwt["audience"]
        .as_sequence()
        .expect("an audience")
        .iter()
        .map(target)
        .collect();
    assert_eq!(audience.len(), 1, "{default}: one app client");
    let client = audience[0].clone().expect("the audience is a !Ref");
    assert_eq!(pool, "UserPool", "{default}");
    assert_eq!(client, "UserPoolClient", "{default}");
    assert_eq!(
        resources[pool]["Type"].as_str(),
        Some("AWS::Cognito::UserPool")
    );
    assert_eq!(
        resources[&client]["Type"].as_str(),
        Some("AWS::Cognito::UserPoolClient")
    );
    assert_eq!(
        target(&resources[&client]["Properties"]["UserPoolId"]).as_deref(),
        Some(pool),
        "the app client is the pool's"
    );

    // Every route: on this API, under the default authorizer (none opts out), with exactly the
    // scopes its document's operation requires.
    let documents = [
        ("order-api", "functions/order-api/openapi.json"),
        ("courier-api", "functions/delivery/openapi.json"),
    ];
    for (handler, relative) in documents {
        let documented = documented_scopes(relative);
        let mut declared = BTreeMap::new();
        for (id, function) in of_type(&resources, "AWS::Serverless::Function") {
            if function["Properties"]["Handler"].as_str() != Some(handler) {
                continue;
            }
            for (name, event) in function["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if event["Type"].as_str() != Some("HttpApi") {
                    continue;
                }
                let p = &event["Properties"];
                assert_eq!(
                    target(&p["ApiId"]).as_deref(),
                    Some(api_id),
                    "{id}.{name:?}"
                );
                let route_authorizer = p["Auth"]["Authorizer"].as_str().unwrap_or(default);
                assert_ne!(
                    route_authorizer, "NONE",
                    "{id}.{name:?} opts out of the authorizer"
                );
                assert_eq!(route_authorizer, default, "{id}.{name:?}");
                let scopes: BTreeSet<String> = p["Auth"]["AuthorizationScopes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|s| s.as_str().expect("a scope").to_owned())
                    .collect();
                let route = (
                    p["Method"].as_str().expect("method").to_owned(),
                    p["Path"].as_str().expect("path").to_owned(),
                );
                declared.insert(route, scopes);
            }
        }
        assert_eq!(
            declared, documented,
            "{handler}: template.yaml's routes and scopes vs {relative}'s operations and security"
        );
    }
}

#[test]
fn alarms_can_reach_the_ops_topic_and_watch_the_stream_readers_and_the_api() {
    let resources = resources(&template());
    // CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key.
    let topic = &resources["OpsAlarmsTopic"]["Properties"];
    let key_id = target(&topic["KmsMasterKeyId"])
        .unwrap_or_else(|| panic!("the ops topic is not encrypted with a key of the template"));
    let key = &resources[&key_id];
    assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("a key policy");
    let cloudwatch = statements
        .iter()
        .find(|s| s["Principal"]["Service"].as_str() == Some("cloudwatch.amazonaws.com"))
        .expect("the key policy lets CloudWatch use the key");
    let actions: Vec<&str> = cloudwatch["Action"]
        .as_sequence()
        .expect("actions")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(actions.contains(&"kms:Decrypt") && actions.contains(&"kms:GenerateDataKey*"));

    let alarms = of_type(&resources, "AWS::CloudWatch::Alarm");
    let watched = |metric: &str| -> BTreeSet<String> {
        alarms
            .iter()
            .filter(|(_, a)| a["Properties"]["MetricName"].as_str() == Some(metric))
            .filter_map(|(_, a)| {
                a["Properties"]["Dimensions"]
                    .as_sequence()?
                    .iter()
                    .find_map(|d| target(&d["Value"]))
            })
            .collect()
    };
    let stream_readers: BTreeSet<String> = of_type(&resources, "AWS::Lambda::EventSourceMapping")
        .iter()
        .filter(|(_, m)| match &m["Properties"]["EventSourceArn"] {
            Value::Tagged(tagged) => tagged
                .value
                .as_str()
                .is_some_and(|arn| arn.ends_with(".StreamArn")),
            _ => false,
        })
        .filter_map(|(_, m)| target(&m["Properties"]["FunctionName"]))
        .collect();
    assert!(!stream_readers.is_empty());
    for reader in &stream_readers {
        assert!(
            watched("IteratorAge").contains(reader),
            "{reader}: no alarm on its iterator age"
        );
    }
    assert!(
        watched("5xx").contains("HttpApi"),
        "no alarm on the API's 5xx"
    );
    for (id, alarm) in &alarms {
        assert_eq!(
            alarm["Properties"]["AlarmActions"]
                .as_sequence()
                .and_then(|a| a.first())
                .and_then(target)
                .as_deref(),
            Some("OpsAlarmsTopic"),
            "{id}: an alarm that tells nobody"
        );
    }
}

/// The queues the stream readers set poison records aside in (their `*_POISON_QUEUE_URL`).
fn poison_queues(resources: &BTreeMap<String, Value>) -> BTreeSet<String> {
    of_type(resources, "AWS::Serverless::Function")
        .iter()
        .filter_map(|(_, f)| f["Properties"]["Environment"]["Variables"].as_mapping())
        .flat_map(|variables| variables.iter())
        .filter(|(name, _)| {
            name.as_str()
                .is_some_and(|n| n.ends_with("_POISON_QUEUE_URL"))
        })
        .filter_map(|(_, value)| target(value))
        .collect()
}

/// The queues functions' failed asynchronous invocations go to (`EventInvokeConfig`).
fn invoke_failure_queues(resources: &BTreeMap<String, Value>) -> BTreeSet<String> {
    of_type(resources, "AWS::Serverless::Function")
        .iter()
        .filter_map(|(_, f)| {
            target(&f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"])
        })
        .collect()
}

/// The logical ids each alarm on `metric` watches (through its dimensions).
fn watched(resources: &BTreeMap<String, Value>, metric: &str) -> BTreeSet<String> {
    of_type(resources, "AWS::CloudWatch::Alarm")
        .iter()
        .filter(|(_, a)| a["Properties"]["MetricName"].as_str() == Some(metric))
        .filter_map(|(_, a)| {
            a["Properties"]["Dimensions"]
                .as_sequence()?
                .iter()
                .find_map(|d| target(&d["Value"]))
        })
        .collect()
}

/// The text of a `!Sub "…"`.
fn sub_text(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str(),
        _ => None,
    }
}

#[test]
fn every_function_has_errors_and_throttles_alarms_and_a_log_group_with_retention() {
    let resources = resources(&template());
    let functions = of_type(&resources, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 17);
    let (errors, throttles) = (
        watched(&resources, "Errors"),
        watched(&resources, "Throttles"),
    );
    for (id, function) in &functions {
        assert!(errors.contains(*id), "{id}: no alarm on its errors");
        assert!(throttles.contains(*id), "{id}: no alarm on its throttles");
        let name = sub_text(&function["Properties"]["FunctionName"])
            .unwrap_or_else(|| panic!("{id}: FunctionName is not a !Sub"));
        let group_id = target(&function["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig names no log group of the template"));
        let group = &resources[&group_id];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{id}");
        assert_eq!(
            sub_text(&group["Properties"]["LogGroupName"]),
            Some(format!("/aws/lambda/{name}").as_str()),
            "{id}: the log group Lambda would create, so that none is created beside it"
        );
        assert!(
            group["Properties"]["RetentionInDays"]
                .as_u64()
                .is_some_and(|days| (1..=365).contains(&days)),
            "{id}: logs kept forever"
        );
    }
}

#[test]
fn every_handler_queue_has_an_age_alarm() {
    let resources = resources(&template());
    let handler_queues: Vec<&str> = of_type(&resources, "AWS::SQS::Queue")
        .into_iter()
        .filter(|(_, q)| !q["Properties"]["RedrivePolicy"].is_null())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(handler_queues.len(), 12);
    let aged = watched(&resources, "ApproximateAgeOfOldestMessage");
    for id in handler_queues {
        assert!(aged.contains(id), "{id}: no alarm on its oldest message");
    }
}

#[test]
fn the_overdue_checks_failed_runs_reach_a_queue_with_an_alarm() {
    let resources = resources(&template());
    let config = &resources["DeliveryOverdueCheckFunction"]["Properties"]["EventInvokeConfig"];
    assert!(
        config["MaximumRetryAttempts"]
            .as_u64()
            .is_some_and(|n| n <= 2),
        "asynchronous retries"
    );
    let on_failure = &config["DestinationConfig"]["OnFailure"];
    assert_eq!(
        on_failure["Type"].as_str(),
        Some("SQS"),
        "SAM grants the send"
    );
    let queue = target(&on_failure["Destination"]).expect("an on-failure destination");
    assert_eq!(
        resources[&queue]["Type"].as_str(),
        Some("AWS::SQS::Queue"),
        "{queue}"
    );
    assert!(
        watched(&resources, "ApproximateNumberOfMessagesVisible").contains(&queue),
        "{queue}: no alarm on its depth"
    );
}

#[test]
fn the_stream_readers_set_poison_aside_in_queues_only_they_may_send_to() {
    let resources = resources(&template());
    for (function, variable) in [
        ("EventPublisherFunction", "PUBLISHER_POISON_QUEUE_URL"),
        ("ProjectorFunction", "PROJECTOR_POISON_QUEUE_URL"),
    ] {
        let properties = &resources[function]["Properties"];
        let queue = target(&properties["Environment"]["Variables"][variable])
            .unwrap_or_else(|| panic!("{function}: {variable} is not a queue of the template"));
        assert_eq!(resources[&queue]["Type"].as_str(), Some("AWS::SQS::Queue"));
        let sends: Vec<Option<String>> = properties["Policies"][0]["Statement"]
            .as_sequence()
            .expect("statements")
            .iter()
            .filter(|s| s["Action"][0].as_str() == Some("sqs:SendMessage"))
            .map(|s| target(&s["Resource"]))
            .collect();
        assert!(
            sends.contains(&Some(queue.clone())),
            "{function} may not send to {queue}"
        );
    }
}

#[test]
fn the_stream_readers_timeouts_cover_their_first_step() {
    let resources = resources(&template());
    let globals = template()["Globals"]["Function"]["Timeout"]
        .as_u64()
        .expect("a global timeout");
    for (function, step) in [
        ("EventPublisherFunction", stream_pipeline::publish_budget()),
        ("ProjectorFunction", stream_pipeline::view_budget()),
    ] {
        let timeout = resources[function]["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(globals);
        let needed = stream_pipeline::timeout_needed(step);
        assert!(
            std::time::Duration::from_secs(timeout) >= needed,
            "{function}: Timeout {timeout} s, its first step may take {needed:?}"
        );
    }
}

/// The `${…}` placeholders of a `!Sub` text.
fn placeholders(text: &str) -> BTreeSet<&str> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

#[test]
fn the_dashboard_shows_every_metric_every_functions_errors_and_cold_starts_and_every_alarm() {
    use domain::telemetry::{COLD_START, HANDLER_ERRORS, METRICS, NAMESPACE};

    let template = template();
    let resources = resources(&template);
    let dashboards = of_type(&resources, "AWS::CloudWatch::Dashboard");
    let [(id, dashboard)] = dashboards.as_slice() else {
        panic!("one dashboard: {dashboards:?}")
    };
    let text = sub_text(&dashboard["Properties"]["DashboardBody"])
        .unwrap_or_else(|| panic!("{id}: DashboardBody is not a !Sub"));
    for placeholder in placeholders(text) {
        let (name, attribute) = placeholder
            .split_once('.')
            .map_or((placeholder, None), |(n, a)| (n, Some(a)));
        let known = name.starts_with("AWS::")
            || !template["Parameters"][name].is_null()
            || resources.contains_key(name);
        assert!(
            known,
            "{id}: ${{{placeholder}}} names nothing of the template"
        );
        if attribute.is_some() {
            assert_eq!(placeholder, format!("{name}.Arn"), "{id}");
        }
    }
    let body: serde_json::Value = serde_json::from_str(text).expect("the body is JSON");
    let widgets = body["widgets"].as_array().expect("widgets");
    // (metric, the `${…}` of its Function) of every plotted orderflow metric; the functions each
    // HandlerErrors search covers; every alarm ARN of the alarm widgets.
    let mut plotted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut searched: BTreeSet<String> = BTreeSet::new();
    let mut alarms: BTreeSet<String> = BTreeSet::new();
    for widget in widgets {
        let properties = &widget["properties"];
        let (x, width) = (widget["x"].as_u64(), widget["width"].as_u64());
        assert!(
            x.zip(width).is_some_and(|(x, w)| x + w <= 24),
            "{widget}: off the 24-column grid"
        );
        alarms.extend(
            properties["alarms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|arn| arn.as_str().map(str::to_owned)),
        );
        for row in properties["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().expect("a metric row");
            if let Some(expression) = row.first().and_then(|e| e["expression"].as_str()) {
                let search = format!("MetricName=\"{HANDLER_ERRORS}\" Function=\"");
                let function = expression
                    .split_once(&search)
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(function, _)| function.to_owned())
                    .unwrap_or_else(|| {
                        panic!("an expression that is no error search: {expression}")
                    });
                assert!(
                    expression.starts_with(&format!("SEARCH('{{{NAMESPACE},ErrorKind,Function}} ")),
                    "{expression}"
                );
                searched.insert(function);
            } else if row.first().and_then(|n| n.as_str()) == Some(NAMESPACE) {
                let cell = |n: usize| row.get(n).and_then(|v| v.as_str()).unwrap_or_default();
                assert_eq!(cell(2), "Function", "{row:?}");
                plotted.insert((cell(1).to_owned(), cell(3).to_owned()));
            }
        }
    }
    let functions = of_type(&resources, "AWS::Serverless::Function");
    let placeholder = |id: &str| format!("${{{id}}}");
    for (row_metric, function) in &plotted {
        assert!(
            METRICS.iter().any(|m| m.name == row_metric),
            "{row_metric}: not a metric the functions emit"
        );
        assert!(
            functions.iter().any(|(f, _)| placeholder(f) == *function),
            "{row_metric} of {function}: not a function of the template"
        );
    }
    for metric in METRICS {
        let shown = plotted.iter().any(|(m, _)| m == metric.name)
            || (metric.name == HANDLER_ERRORS && !searched.is_empty());
        assert!(shown, "{}: not on the dashboard", metric.name);
    }
    for (function, _) in &functions {
        assert!(
            plotted.contains(&(COLD_START.to_owned(), placeholder(function))),
            "{function}: its cold starts are not on the dashboard"
        );
        assert!(
            searched.contains(&placeholder(function)),
            "{function}: its handler errors are not on the dashboard"
        );
    }
    for (alarm, _) in of_type(&resources, "AWS::CloudWatch::Alarm") {
        assert!(
            alarms.contains(&format!("${{{alarm}.Arn}}")),
            "{alarm}: not on the dashboard"
        );
    }
    assert!(
        alarms.len() <= 100,
        "an alarm widget shows at most 100 alarms"
    );
}

// ---------------------------------------------------------------- the generated queue plumbing

const PLUMBING_BEGIN: &str = "  # BEGIN queue plumbing";
const PLUMBING_END: &str = "  # END queue plumbing";
const REGENERATE_PLUMBING: &str =
    "ORDERFLOW_BLESS=1 cargo test -p integration-tests --lib template";

/// One queue function's plumbing, `{P}` its logical-id prefix, `{k}` its name, `{E}` the event
/// type its rule routes: its queue (redriving to its DLQ after 5 receives), the DLQ, the bus rule
/// (with its own DLQ and retry policy), the queue policy letting only that rule send, and the
/// alarms on the DLQ and on the queue's oldest message.
const PLUMBING: &str = r#"  {P}Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orderflow-${Stage}-{k}"
      VisibilityTimeout: 60
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt {P}DeadLetterQueue.Arn
        maxReceiveCount: 5

  {P}DeadLetterQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orderflow-${Stage}-{k}-dlq"
      MessageRetentionPeriod: 1209600
      SqsManagedSseEnabled: true

  {P}Rule:
    Type: AWS::Events::Rule
    Properties:
      Name: !Sub "orderflow-${Stage}-{k}"
      EventBusName: !Ref EventBus
      EventPattern:
        source: [{prefix: "orderflow."}]
        detail-type: [{E}]
      Targets:
        - Id: queue
          Arn: !GetAtt {P}Queue.Arn
          DeadLetterConfig:
            Arn: !GetAtt {P}DeadLetterQueue.Arn
          RetryPolicy:
            MaximumRetryAttempts: 10
            MaximumEventAgeInSeconds: 3600

  {P}QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues:
        - !Ref {P}Queue
        - !Ref {P}DeadLetterQueue
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Sid: BusRuleDelivers
            Effect: Allow
            Principal:
              Service: events.amazonaws.com
            Action: sqs:SendMessage
            Resource:
              - !GetAtt {P}Queue.Arn
              - !GetAtt {P}DeadLetterQueue.Arn
            Condition:
              ArnEquals:
                aws:SourceArn: !GetAtt {P}Rule.Arn

  {P}DeadLetterAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub "orderflow-${Stage}-{k}-dlq-not-empty"
      AlarmDescription: Messages {k} could not handle are waiting in its dead-letter queue
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions:
        - Name: QueueName
          Value: !GetAtt {P}DeadLetterQueue.QueueName
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions:
        - !Ref OpsAlarmsTopic

  {P}QueueAgeAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub "orderflow-${Stage}-{k}-queue-age"
      AlarmDescription: The oldest message waiting for {k} is more than 10 minutes old
      Namespace: AWS/SQS
      MetricName: ApproximateAgeOfOldestMessage
      Dimensions:
        - Name: QueueName
          Value: !GetAtt {P}Queue.QueueName
      Statistic: Maximum
      Period: 60
      EvaluationPeriods: 5
      DatapointsToAlarm: 3
      Threshold: 600
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions:
        - !Ref OpsAlarmsTopic
"#;

/// `order-on-delivery-completed` → `OrderOnDeliveryCompleted`: a function's logical-id prefix.
fn logical_prefix(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

/// The generated block: the plumbing of every queue function of the registry, in its order.
fn plumbing_block() -> String {
    let mut block = format!(
        "{PLUMBING_BEGIN} (generated by `{REGENERATE_PLUMBING}` from the function registry: one \
         block per queue function; change the registry or tests/support/template.rs, not this)\n"
    );
    for function in FUNCTIONS {
        let Trigger::Queue { event_type } = function.trigger else {
            continue;
        };
        block.push('\n');
        block.push_str(
            &PLUMBING
                .replace("{P}", &logical_prefix(function.name))
                .replace("{k}", function.name)
                .replace("{E}", event_type),
        );
    }
    block.push_str(PLUMBING_END);
    block.push('\n');
    block
}

/// The template's text before, in and after the generated block.
fn split_plumbing(text: &str) -> (&str, &str, &str) {
    let begin = text
        .find(PLUMBING_BEGIN)
        .unwrap_or_else(|| panic!("template.yaml has no `{PLUMBING_BEGIN}` line"));
    let end = text[begin..]
        .find(PLUMBING_END)
        .map(|offset| begin + offset)
        .unwrap_or_else(|| panic!("template.yaml has no `{PLUMBING_END}` line"));
    let after = text[end..].find('\n').map_or(text.len(), |n| end + n + 1);
    (&text[..begin], &text[begin..after], &text[after..])
}

#[test]
fn the_queue_plumbing_is_generated_from_the_registry() {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("reading template.yaml");
    let (before, block, after) = split_plumbing(&text);
    let generated = plumbing_block();
    if std::env::var("ORDERFLOW_BLESS").is_ok_and(|v| v == "1") && block != generated {
        std::fs::write(&path, format!("{before}{generated}{after}"))
            .expect("writing template.yaml");
        return;
    }
    assert!(
        block == generated,
        "template.yaml's queue plumbing is not the generated one: run `{REGENERATE_PLUMBING}`"
    );
    assert_eq!(
        logical_prefix("alert-on-delivery-cancellation-refused"),
        "AlertOnDeliveryCancellationRefused"
    );
}
