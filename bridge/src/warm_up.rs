//! Calling every function once before the bridge says it is ready: one no-op invoke each, one at a
//! time, so that each function's first invoke (its clients' first connections) is off the first
//! orders' path and a function that cannot answer is found before any event flows.
//!
//! The no-op for each kind of function: an HTTP function gets `GET /__warm-up` as API Gateway
//! would send it (its router answers 404); an SQS or stream function an empty batch; a scheduled
//! function its scheduled event (a tick, as the schedule would send).

use chrono::Utc;
use http::HeaderMap;
use serde_json::{Value, json};
use tracing::info;

use super::apigw::{IncomingRequest, RequestMeta, v2_payload};
use super::invoke::{InvokeError, Invoker};
use super::routes::Matched;
use super::scheduler::scheduled_event;
use super::stack::{FunctionSpec, Stack};
use super::template::Environment;

/// The path of the warm-up request.
pub const WARM_UP_PATH: &str = "/__warm-up";

/// Each function of `stack` with the no-op event that starts it, in the stack's order.
pub fn warm_up_events(stack: &Stack, env: &Environment) -> Vec<(FunctionSpec, Value)> {
    let mut events: Vec<(FunctionSpec, Value)> = Vec::new();
    let mut add = |function: &FunctionSpec, event: Value| {
        if !events.iter().any(|(f, _)| f.handler == function.handler) {
            events.push((function.clone(), event));
        }
    };
    let headers = HeaderMap::new();
    for route in stack.routes.routes() {
        let request = IncomingRequest {
            method: "GET",
            raw_path: WARM_UP_PATH,
            raw_query: "",
            headers: &headers,
            body: &[],
            source_ip: "127.0.0.1",
        };
        let matched = Matched {
            route,
            parameters: Default::default(),
        };
        let meta = RequestMeta {
            request_id: uuid::Uuid::now_v7().to_string(),
            received_at: Utc::now(),
            account_id: env.account.clone(),
            authorizer: None,
        };
        add(&route.function, v2_payload(&request, &matched, &meta));
    }
    for mapping in &stack.queues {
        add(&mapping.function, json!({"Records": []}));
    }
    for mapping in &stack.streams {
        add(&mapping.function, json!({"Records": []}));
    }
    for schedule in &stack.schedules {
        let rule_arn = format!(
            "arn:aws:events:{}:{}:rule/{}",
            env.region, env.account, schedule.name
        );
        let id = uuid::Uuid::now_v7().to_string();
        add(
            &schedule.function,
            scheduled_event(&id, &rule_arn, &env.account, &env.region, Utc::now()),
        );
    }
    events
}

/// Invokes each function once with its no-op event, one after the other. A function that answers
/// with an error has started all the same (its process runs); one that cannot be reached or does
/// not answer in time fails the warm-up, naming it.
pub async fn warm_up(invoker: &Invoker, stack: &Stack, env: &Environment) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let events = warm_up_events(stack, env);
    for (function, event) in &events {
        let began = std::time::Instant::now();
        match invoker.invoke(function, event).await {
            Ok(_) | Err(InvokeError::Function { .. }) => {
                info!(function = %function.handler, elapsed_ms = began.elapsed().as_millis(), "function started");
            }
            Err(error) => {
                anyhow::bail!("starting {} failed: {}", function.handler, error.reason());
            }
        }
    }
    info!(
        functions = events.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "every function started"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Resolver, Template};

    #[test]
    fn every_function_of_the_template_gets_one_no_op_event_of_its_kind() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let template = Template::load(&path).unwrap();
        let env = Environment::local("test", "us-east-1", "http://127.0.0.1:5000");
        let stack = Stack::from_template(&Resolver::new(&template, env.clone())).unwrap();
        let events = warm_up_events(&stack, &env);
        let mut binaries: Vec<&str> = events.iter().map(|(f, _)| f.handler.as_str()).collect();
        binaries.sort_unstable();
        binaries.dedup();
        assert_eq!(binaries.len(), events.len(), "one event per function");
        assert_eq!(events.len(), stack.functions.len(), "every function");
        let event_of = |binary: &str| &events.iter().find(|(f, _)| f.handler == binary).unwrap().1;
        assert_eq!(event_of("order-api")["rawPath"], WARM_UP_PATH);
        assert_eq!(
            event_of("order-api")["requestContext"]["http"]["method"],
            "GET"
        );
        assert_eq!(
            event_of("delivery-on-order-placed"),
            &json!({"Records": []})
        );
        assert_eq!(event_of("projector"), &json!({"Records": []}));
        assert_eq!(
            event_of("delivery-overdue-check")["detail-type"],
            "Scheduled Event"
        );
    }
}
