//! `orderflow-lambda`: the `bootstrap` of every function in `template.yaml`. It serves the function
//! its `_HANDLER` names (see [`function_registry::run`]); only wiring.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    function_registry::run().await
}
