//! Hostile callers, through the real bridge and functions: every route of the API against tokens
//! that must not pass (none, expired, another audience, another issuer, a tampered signature,
//! `alg: none`) and against callers who may not do what they ask (another customer, a courier on a
//! customer's route, a customer on a courier's route, a courier on another courier's delivery).
//! Each gets its exact status and body — API Gateway's `{"message": …}` with `WWW-Authenticate` for
//! a token the authorizer refuses (the function never sees the request), the function's problem
//! document otherwise — and nothing is stored or published. Then the legal paths still work.

use domain::identity::Group;
use http::{Method, StatusCode};
use integration_tests::stack::{Reply, Stack};
use integration_tests::tokens::{Forger, tampered, unsigned};
use integration_tests::unique_name;
use serde_json::{Value, json};

/// One route, with a path for the victim's order and a body that would be accepted.
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
}

fn route(method: Method, path: String, body: Option<Value>) -> Route {
    Route { method, path, body }
}

/// Every route of the API, aimed at the victim's order `order_id` (customer `customer_id`).
fn every_route(order_id: &str, customer_id: &str) -> Vec<Route> {
    let delivery = format!("/deliveries/d-{order_id}");
    let eta = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    vec![
        route(
            Method::POST,
            "/orders".into(),
            Some(integration_tests::stack::order_body()),
        ),
        route(Method::GET, format!("/orders/{order_id}"), None),
        route(Method::POST, format!("/orders/{order_id}/cancel"), None),
        route(Method::GET, format!("/orders/{order_id}/events"), None),
        route(
            Method::GET,
            format!("/customers/{customer_id}/orders"),
            None,
        ),
        route(Method::GET, delivery.clone(), None),
        route(
            Method::POST,
            format!("{delivery}/dispatch"),
            Some(json!({})),
        ),
        route(
            Method::POST,
            format!("{delivery}/delay"),
            Some(json!({"new_eta": eta, "reason": "made up"})),
        ),
        route(
            Method::POST,
            format!("{delivery}/complete"),
            Some(json!({})),
        ),
        route(
            Method::POST,
            format!("{delivery}/fail"),
            Some(json!({"reason": "made up"})),
        ),
    ]
}

/// Sends `route` with `authorization` (none when `None`), under a correlation id of its own.
async fn send(stack: &Stack, route: &Route, authorization: Option<&str>) -> (Reply, String) {
    let correlation = unique_name("hostile");
    let mut headers = vec![("x-correlation-id", correlation.as_str())];
    let key = unique_name("hostile-key");
    if route.method == Method::POST && route.path == "/orders" {
        headers.push(("idempotency-key", key.as_str()));
    }
    if let Some(authorization) = authorization {
        headers.push(("authorization", authorization));
    }
    let reply = stack
        .call(
            route.method.clone(),
            &route.path,
            route.body.as_ref(),
            &headers,
        )
        .await;
    (reply, correlation)
}

fn assert_problem(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{what}: a problem document"
    );
    assert_eq!(
        reply.body["status"],
        status.as_u16(),
        "{what}: {}",
        reply.body
    );
}

#[tokio::test]
async fn hostile_callers_get_their_exact_refusal_on_every_route_and_change_nothing() {
    let stack = Stack::from_env().await;
    let forger = Forger::from_env();
    let victim_name = unique_name("cust-victim");
    let victim = stack.customer(&victim_name).await;
    let intruder = stack.customer(&unique_name("cust-intruder")).await;
    let holder = stack
        .user(&unique_name("courier-holder"), Group::Couriers)
        .await;
    let other_courier = stack
        .user(&unique_name("courier-other"), Group::Couriers)
        .await;

    // The victim's order, dispatched by its courier.
    let order_id = stack
        .place_order(&victim_name, &unique_name("corr-victim"))
        .await;
    stack
        .wait_for_view(&order_id, "the delivery scheduled", |v| {
            v["delivery"]["status"] == "scheduled"
        })
        .await;
    let dispatched = stack
        .call_as(
            &holder,
            Method::POST,
            &format!("/deliveries/d-{order_id}/dispatch"),
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(dispatched.status, StatusCode::OK, "{}", dispatched.body);
    stack
        .wait_for_view(&order_id, "the order shipped", |v| v["status"] == "shipped")
        .await;
    let before_order = stack.event_types("order", &order_id).await;
    let before_delivery = stack.event_types("delivery", format!("d-{order_id}")).await;

    let routes = every_route(&order_id, &victim.subject);
    let real = victim.access_token.clone();

    // Tokens the authorizer refuses: 401 from the gateway; the function never sees the request.
    let bearer = |token: String| format!("Bearer {token}");
    let refused_tokens: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some(bearer("not-a-token".into()))),
        (
            "expired",
            Some(bearer(forger.resign(&real, |c| {
                let past = chrono::Utc::now().timestamp() - 3600;
                c["exp"] = json!(past);
                c["iat"] = json!(past - 3600);
            }))),
        ),
        (
            "wrong audience",
            Some(bearer(forger.resign(&real, |c| {
                c["client_id"] = json!("some-other-app-client");
            }))),
        ),
        (
            "wrong issuer",
            Some(bearer(forger.resign(&real, |c| {
                c["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Elsewhere");
            }))),
        ),
        ("tampered signature", Some(bearer(tampered(&real)))),
        ("alg none", Some(bearer(unsigned(&real)))),
    ];
    let mut unseen = Vec::new();
    for (kind, authorization) in &refused_tokens {
        for route in &routes {
            let what = format!("{kind}: {} {}", route.method, route.path);
            let (reply, correlation) = send(&stack, route, authorization.as_deref()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{what}: {}",
                reply.body
            );
            assert_eq!(reply.body, json!({"message": "Unauthorized"}), "{what}");
            assert!(
                reply.headers.contains_key("www-authenticate"),
                "{what}: WWW-Authenticate"
            );
            unseen.push((what, correlation));
        }
    }

    // Callers the functions refuse.
    let as_bearer = |user: &tools::demo_api::SignedIn| user.bearer();
    let customer_routes = &routes[..5];
    let courier_routes = &routes[5..];
    // Another customer: the victim's order does not exist for them; the list is forbidden; a body
    // naming the victim is refused.
    let intruder_bearer = as_bearer(&intruder);
    let mut posing = integration_tests::stack::order_body();
    posing["customer_id"] = json!(victim.subject);
    let expectations = [
        (
            route(Method::POST, "/orders".into(), Some(posing)),
            StatusCode::FORBIDDEN,
        ),
        (
            route(Method::GET, routes[1].path.clone(), None),
            StatusCode::NOT_FOUND,
        ),
        (
            route(Method::POST, routes[2].path.clone(), None),
            StatusCode::NOT_FOUND,
        ),
        (
            route(Method::GET, routes[3].path.clone(), None),
            StatusCode::NOT_FOUND,
        ),
        (
            route(Method::GET, routes[4].path.clone(), None),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (route, status) in &expectations {
        let (reply, _) = send(&stack, route, Some(&intruder_bearer)).await;
        assert_problem(
            &reply,
            *status,
            &format!("another customer: {} {}", route.method, route.path),
        );
    }
    // A courier on the customers' routes.
    let courier_bearer = as_bearer(&other_courier);
    for (route, status) in customer_routes.iter().zip([
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
        StatusCode::NOT_FOUND,
        StatusCode::NOT_FOUND,
        StatusCode::FORBIDDEN,
    ]) {
        let (reply, _) = send(&stack, route, Some(&courier_bearer)).await;
        assert_problem(
            &reply,
            status,
            &format!("a courier: {} {}", route.method, route.path),
        );
    }
    // A customer on the couriers' routes.
    let victim_bearer = as_bearer(&victim);
    for route in courier_routes {
        let (reply, _) = send(&stack, route, Some(&victim_bearer)).await;
        assert_problem(
            &reply,
            StatusCode::FORBIDDEN,
            &format!("a customer: {} {}", route.method, route.path),
        );
    }
    // The wrong courier: may read the delivery, may not take it over or end it.
    for (route, status) in courier_routes.iter().zip([
        StatusCode::OK,
        StatusCode::CONFLICT,
        StatusCode::FORBIDDEN,
        StatusCode::FORBIDDEN,
        StatusCode::FORBIDDEN,
    ]) {
        let (reply, _) = send(&stack, route, Some(&courier_bearer)).await;
        let what = format!("the wrong courier: {} {}", route.method, route.path);
        if status == StatusCode::OK {
            assert_eq!(reply.status, status, "{what}: {}", reply.body);
            assert!(
                !reply.body.to_string().contains("Test Street"),
                "{what}: a courier's read carries no stored address"
            );
        } else {
            assert_problem(&reply, status, &what);
        }
    }

    // Nothing was stored, so nothing was published.
    assert_eq!(stack.event_types("order", &order_id).await, before_order);
    assert_eq!(
        stack.event_types("delivery", format!("d-{order_id}")).await,
        before_delivery
    );
    for user in [&intruder, &other_courier] {
        let listed = stack
            .expect(
                StatusCode::OK,
                Method::GET,
                &format!("/customers/{}/orders", user.subject),
                None,
            )
            .await;
        assert_eq!(
            listed["orders"],
            json!([]),
            "no order was placed by a hostile call"
        );
    }
    // The refused tokens never reached a function.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for (what, correlation) in &unseen {
        assert!(
            stack.log_lines_with(correlation).is_empty(),
            "{what}: the request reached a function"
        );
    }

    // The legal paths still work: the victim reads their order and history (without the
    // address), support reads the address, the holder completes the delivery.
    let own = stack
        .call_as(
            &victim,
            Method::GET,
            &format!("/orders/{order_id}/events"),
            None,
            &[],
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert!(
        !own.body.to_string().contains("Test Street"),
        "{}",
        own.body
    );
    let audit = stack
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/orders/{order_id}/events"),
            None,
        )
        .await;
    assert!(
        audit.to_string().contains("1 Test Street"),
        "support sees the address"
    );
    let placed = &audit["events"][0];
    assert_eq!(placed["actor"], format!("customer/{}", victim.subject));
    let completed = stack
        .call_as(
            &holder,
            Method::POST,
            &format!("/deliveries/d-{order_id}/complete"),
            None,
            &[],
        )
        .await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.body);
    let delivery = stack.events("delivery", format!("d-{order_id}")).await;
    assert_eq!(
        delivery.last().map(|e| e.actor.as_str().to_owned()),
        Some(format!("courier/{}", holder.subject)),
        "the audit trail names the authenticated courier"
    );
}
