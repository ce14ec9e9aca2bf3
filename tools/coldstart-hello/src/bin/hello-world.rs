//! `hello-world`: the cold-start floor the functions are measured against (`orderflow-coldstart`,
//! `scripts/coldstart.sh`). It has what every orderflow function has before its own code — the
//! Lambda runtime, tokio, the runtime's default tracing subscriber — and answers
//! `{"hello": EVENT}` for any JSON event, so the difference between a function's cold start and
//! this one's is what the function itself costs.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(json!({ "hello": event.payload }))
    }))
    .await
}
