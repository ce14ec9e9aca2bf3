//! `orderflow demo --api URL`: the whole story through a running stack's HTTP API, as a customer
//! and a courier live it, each signed in with their own access token (the customer is the token's
//! subject; the server prices the baskets from the catalogue). Three orders are placed (`POST /orders` with an `Idempotency-Key`; the
//! first one is sent twice to show the replay), then couriers move their deliveries along:
//!
//! 1. dispatched → completed;
//! 2. dispatched → delayed (a coupon follows) → completed;
//! 3. dispatched → failed (the order is cancelled).
//!
//! Every step waits, with a bound, until its effects show in `GET /orders/{id}` (the read model
//! fed by the stream, the bus and the queues). At the end each order's timeline is printed, one
//! line per entry, with the notifications the customer received (read from the
//! `<customer-notifications topic>-inbox` queue) and the time from `POST /orders` to the order
//! view showing the delivery scheduled.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::http_client::{HttpClient, json_request};

/// How long one step may take to show in the order view.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for notifications to stop arriving once the expected ones are in.
const NOTIFICATIONS_QUIET: Duration = Duration::from_secs(2);
/// How long to wait for the expected notifications at most.
const NOTIFICATIONS_TIMEOUT: Duration = Duration::from_secs(30);
/// What the story tells the customer at least: 3 × placed, 3 × scheduled, 1 × delayed,
/// 2 × delivered, 1 × cancelled.
const EXPECTED_NOTIFICATIONS: usize = 10;
/// A request's deadline (a function's first invoke may start it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(150);

/// Where to read notifications: the SQS client and the inbox queue's name.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// The client.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue's name.
    pub queue_name: String,
}

/// Who the demo acts as: a signed-in user's id (the token's subject) and access token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user's id: the token's `sub`.
    pub subject: String,
    /// The access token (never printed).
    pub access_token: String,
}

impl SignedIn {
    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token)
    }
}

/// The API, as the demo calls it: as the customer, or as the courier on courier routes.
struct Api {
    client: HttpClient,
    base: String,
    customer: String,
    courier: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Value)> {
        let request = json_request(
            method.clone(),
            &format!("{}{path}", self.base),
            body,
            headers,
        )?;
        let reply = self
            .client
            .send(request, REQUEST_TIMEOUT)
            .await
            .with_context(|| format!("{method} {path}"))?;
        let value = reply.json_body();
        Ok((reply.status, value))
    }

    /// A call that must succeed (2xx).
    async fn ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value> {
        let (status, value) = self.call(method.clone(), path, body, headers).await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {value}");
        }
        Ok(value)
    }

    async fn order(&self, order_id: &str) -> Result<Value> {
        let auth = [("authorization", self.customer.as_str())];
        self.ok(Method::GET, &format!("/orders/{order_id}"), None, &auth)
            .await
    }

    /// Polls the order view until `done` holds; returns the view and how long it took.
    async fn wait_for(
        &self,
        order_id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<(Value, Duration)> {
        let started = Instant::now();
        loop {
            let view = self.order(order_id).await?;
            if done(&view) {
                return Ok((view, started.elapsed()));
            }
            if started.elapsed() > STEP_TIMEOUT {
                bail!(
                    "order {order_id}: {what} did not show in the order view within {STEP_TIMEOUT:?}; it shows {}",
                    status_line(&view)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn courier(&self, order_id: &str, action: &str, body: &Value) -> Result<()> {
        let path = format!("/deliveries/d-{order_id}/{action}");
        let auth = [("authorization", self.courier.as_str())];
        self.ok(Method::POST, &path, Some(body), &auth)
            .await
            .map(drop)
    }
}

/// The delivery's status in an order view (`-` before the delivery exists).
pub(crate) fn delivery_status(view: &Value) -> &str {
    view["delivery"]["status"].as_str().unwrap_or("-")
}

fn order_status(view: &Value) -> &str {
    view["status"].as_str().unwrap_or("-")
}

/// `placed, delivery scheduled` — where an order stands.
pub fn status_line(view: &Value) -> String {
    let coupons = view["coupons"].as_array().map_or(0, Vec::len);
    let mut line = format!(
        "order {}, delivery {}",
        order_status(view),
        delivery_status(view)
    );
    if coupons > 0 {
        line.push_str(&format!(", {coupons} coupon(s)"));
    }
    line
}

/// The order view's timeline, one line per entry: time, event type, actor, summary.
pub fn timeline_lines(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let at = entry["occurred_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(|| "?".to_owned(), |t| t.format("%H:%M:%S%.3f").to_string());
            format!(
                "  {at}  {:<22} {:<45} {}",
                entry["event_type"].as_str().unwrap_or("?"),
                entry["actor"].as_str().unwrap_or("?"),
                entry["summary"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// One notification from the inbox (an SNS envelope): event type, customer, subject.
pub fn notification(body: &str) -> Option<(String, String, String)> {
    let envelope: Value = serde_json::from_str(body).ok()?;
    let attribute = |name: &str| {
        envelope["MessageAttributes"][name]["Value"]
            .as_str()
            .unwrap_or("?")
            .to_owned()
    };
    Some((
        attribute("event_type"),
        attribute("customer_id"),
        envelope["Subject"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// The body of `POST /orders`: the caller buys `lines` (SKU of the sample catalogue, quantity);
/// the server prices them.
pub(crate) fn order_body(lines: &[(&str, u32)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    json!({
        "currency": "EUR",
        "items": items,
        "delivery_address": {
            "recipient": "Demo Customer",
            "line1": "1 Demo Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
    })
}

/// Reads the inbox until the expected notifications are in and nothing new arrives for a while
/// (or the timeout passes); keeps this customer's notifications.
async fn notifications(inbox: &Inbox, customer: &str) -> Result<Vec<(String, String, String)>> {
    let url = inbox
        .sqs
        .get_queue_url()
        .queue_name(&inbox.queue_name)
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)
        .with_context(|| format!("the inbox queue {}", inbox.queue_name))?
        .queue_url
        .unwrap_or_default();
    let mut seen = Vec::new();
    let started = Instant::now();
    let mut last_new = Instant::now();
    while started.elapsed() < NOTIFICATIONS_TIMEOUT
        && (seen.len() < EXPECTED_NOTIFICATIONS || last_new.elapsed() < NOTIFICATIONS_QUIET)
    {
        let received = inbox
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(aws_sdk_sqs::Error::from)?;
        for message in received.messages() {
            if let Some(found) = notification(message.body().unwrap_or_default())
                && found.1 == customer
            {
                seen.push(found);
                last_new = Instant::now();
            }
            inbox
                .sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)?;
        }
    }
    Ok(seen)
}

/// Runs the demo against the API at `base`.
#[allow(clippy::print_stdout)]
pub async fn demo(
    base: &str,
    inbox: Option<Inbox>,
    customer: &SignedIn,
    courier: &SignedIn,
) -> Result<()> {
    let api = Api {
        client: HttpClient::new(),
        base: base.trim_end_matches('/').to_owned(),
        customer: customer.bearer(),
        courier: courier.bearer(),
    };
    let run = Utc::now().format("%H%M%S%3f").to_string();
    let baskets: [&[(&str, u32)]; 3] = [
        &[("TEA-GREEN-100G", 2), ("MUG-STONE", 1)],
        &[("POT-CAST-IRON", 1)],
        &[("TEA-BLACK-250G", 3), ("FILTER-PAPER-100", 1)],
    ];
    let customer_id = customer.subject.as_str();
    println!(
        "placing 3 orders as customer {customer_id} (courier {}) through {base}",
        courier.subject
    );
    let mut orders: Vec<String> = Vec::new();
    let mut latencies: Vec<Duration> = Vec::new();
    for (n, basket) in baskets.iter().enumerate() {
        let key = format!("demo-{run}-{n}");
        let body = order_body(basket);
        let posted = Instant::now();
        let placed = api
            .ok(
                Method::POST,
                "/orders",
                Some(&body),
                &[("idempotency-key", &key), ("authorization", &api.customer)],
            )
            .await?;
        let order_id = placed["order_id"]
            .as_str()
            .context("POST /orders answered without an order_id")?
            .to_owned();
        if n == 0 {
            let again = api
                .ok(
                    Method::POST,
                    "/orders",
                    Some(&body),
                    &[("idempotency-key", &key), ("authorization", &api.customer)],
                )
                .await?;
            if again["order_id"] != placed["order_id"] {
                bail!("the same Idempotency-Key placed a second order: {again}");
            }
        }
        api.wait_for(&order_id, "the delivery scheduled", |v| {
            delivery_status(v) == "scheduled"
        })
        .await?;
        let latency = posted.elapsed();
        println!(
            "  order {} placed ({}); delivery scheduled after {:.2} s",
            n + 1,
            placed["total_display"].as_str().unwrap_or("?"),
            latency.as_secs_f64()
        );
        orders.push(order_id);
        latencies.push(latency);
    }

    let courier = json!({});
    let shipped = |v: &Value| order_status(v) == "shipped" && delivery_status(v) == "dispatched";
    let completed = |v: &Value| order_status(v) == "completed" && delivery_status(v) == "completed";
    println!("couriers at work");
    let [first, second, third] = [&orders[0], &orders[1], &orders[2]];
    api.courier(first, "dispatch", &courier).await?;
    api.wait_for(first, "the order shipped", shipped).await?;
    api.courier(first, "complete", &courier).await?;
    api.wait_for(first, "the order completed", completed)
        .await?;
    println!("  order 1: dispatched, completed");

    api.courier(second, "dispatch", &courier).await?;
    // A delay moves the ETA later than the current one (the promise made when scheduled).
    let (view, _) = api.wait_for(second, "the order shipped", shipped).await?;
    let eta = view["delivery"]["eta"]
        .as_str()
        .and_then(|eta| chrono::DateTime::parse_from_rfc3339(eta).ok())
        .map_or_else(Utc::now, |eta| eta.with_timezone(&Utc));
    let delay = json!({
        "new_eta": (eta + chrono::Duration::hours(24)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reason": "traffic on the ring road",
    });
    api.courier(second, "delay", &delay).await?;
    api.wait_for(second, "the delay and its coupon", |v| {
        v["delivery"]["delays"].as_u64() == Some(1)
            && v["coupons"].as_array().is_some_and(|c| c.len() == 1)
    })
    .await?;
    api.courier(second, "complete", &courier).await?;
    api.wait_for(second, "the order completed", completed)
        .await?;
    println!("  order 2: dispatched, delayed (coupon issued), completed");

    api.courier(third, "dispatch", &courier).await?;
    api.wait_for(third, "the order shipped", shipped).await?;
    let fail = json!({"reason": "recipient not at home"});
    api.courier(third, "fail", &fail).await?;
    api.wait_for(third, "the order cancelled", |v| {
        order_status(v) == "cancelled" && delivery_status(v) == "failed"
    })
    .await?;
    println!("  order 3: dispatched, failed (order cancelled)");

    for (n, order_id) in orders.iter().enumerate() {
        let view = api.order(order_id).await?;
        println!();
        println!("order {} — {order_id}: {}", n + 1, status_line(&view));
        for line in timeline_lines(&view) {
            println!("{line}");
        }
    }
    if let Some(inbox) = &inbox {
        let received = notifications(inbox, customer_id).await?;
        println!();
        println!(
            "notifications to {customer_id} ({} on {}):",
            received.len(),
            inbox.queue_name
        );
        for (event_type, _, subject) in &received {
            println!("  {event_type:<22} {subject}");
        }
    }
    println!();
    let figures: Vec<String> = latencies
        .iter()
        .map(|l| format!("{:.2} s", l.as_secs_f64()))
        .collect();
    println!(
        "POST /orders → delivery scheduled in the order view: {}",
        figures.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_reads_one_line_per_entry() {
        let view = json!({
            "status": "completed",
            "delivery": {"status": "completed"},
            "coupons": [{"coupon_id": "c-1"}],
            "timeline": [
                {"occurred_at": "2026-11-28T10:15:42.123Z", "event_type": "OrderPlaced", "actor": "customer:c-1", "summary": "2 line(s), total €37.97"},
                {"occurred_at": "2026-11-28T10:15:44.5Z", "event_type": "DeliveryScheduled", "actor": "system:delivery", "summary": "promised by …"},
            ],
        });
        let lines = timeline_lines(&view);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("  10:15:42.123  OrderPlaced"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("customer:c-1") && lines[0].ends_with("total €37.97"));
        assert!(lines[1].contains("10:15:44.500"));
        assert_eq!(
            status_line(&view),
            "order completed, delivery completed, 1 coupon(s)"
        );
    }

    #[test]
    fn notifications_are_read_from_the_sns_envelope() {
        let body = json!({
            "Type": "Notification",
            "Subject": "Your order o-1 is on its way",
            "Message": "…",
            "MessageAttributes": {
                "event_type": {"Type": "String", "Value": "DeliveryDispatched"},
                "customer_id": {"Type": "String", "Value": "demo-1"},
            },
        })
        .to_string();
        assert_eq!(
            notification(&body),
            Some((
                "DeliveryDispatched".into(),
                "demo-1".into(),
                "Your order o-1 is on its way".into()
            ))
        );
        assert_eq!(notification("not json"), None);
    }
}
