//! `orderflow-lambda`: the `bootstrap` of every function in `template.yaml`. It serves the function
//! its `_HANDLER` names (see [`function_registry::run`]); only wiring.
//!
//! One thread: a function handles one invocation at a time, and what it does at once (a batch's
//! notifications, a batch's `PutEvents` calls) is concurrent futures, not threads; no worker
//! threads to start during init (BENCHMARKS.md, "Cold start").

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    function_registry::run().await
}
