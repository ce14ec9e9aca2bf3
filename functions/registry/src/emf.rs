//! The functions' metrics as CloudWatch Embedded Metric Format (docs/metrics.md): the bootstrap
//! installs one recorder per process ([`Emf::install`]), the code records through the `metrics`
//! facade ([`domain::telemetry`]), and after every invocation [`Emf::invocation`] writes what it
//! recorded as EMF documents, one JSON line each, to stdout — where Lambda's logs pick them up and
//! CloudWatch turns them into metrics (no API call, no permission). A process's first invocation
//! also counts a cold start.
//!
//! The recorder is `metrics_cloudwatch_embedded`'s collector: counters are reset and histograms
//! drained at each flush, so each document holds one invocation's values; one document per set
//! of dimension values (`Function`, and `Function` + `ErrorKind` for handler errors).

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use domain::telemetry::{self, FUNCTION, NAMESPACE};
use lambda_glue::config::Lookup;
use metrics_cloudwatch_embedded::{Builder, Collector};
use tracing::warn;

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("the metrics recorder could not be installed: {0}")]
pub struct InstallError(String);

/// The metrics of this process.
pub struct Emf {
    collector: &'static Collector,
    cold: AtomicBool,
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf")
            .field("cold", &self.cold)
            .finish_non_exhaustive()
    }
}

/// The `Function` dimension of a process serving `function`: its Lambda function name
/// (`AWS_LAMBDA_FUNCTION_NAME`, `orderflow-<stage>-<name>`, as in `AWS/Lambda`'s metrics, so that
/// two stages never share a series), or the registry's name where Lambda names none.
pub fn function_dimension(lookup: Lookup<'_>, function: &str) -> String {
    lookup("AWS_LAMBDA_FUNCTION_NAME")
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| function.to_owned())
}

impl Emf {
    /// Installs the process's recorder, every metric with the `Function` dimension `function`.
    /// Once per process: the facade has one global recorder.
    pub fn install(function: &str) -> Result<Self, InstallError> {
        let collector = Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension(FUNCTION, function.to_owned())
            .init()
            .map_err(|error| InstallError(error.to_string()))?;
        telemetry::describe();
        Ok(Self {
            collector,
            cold: AtomicBool::new(true),
        })
    }

    /// Runs one invocation's `work`, then writes the metrics it recorded to `out` in one write
    /// (stdout on Lambda: one line per document, never interleaved with a log line). Writes
    /// nothing when nothing was recorded; a failed write is logged, never the invocation's failure.
    pub async fn invocation<T>(
        &self,
        work: impl Future<Output = T>,
        out: &mut (dyn Write + Send),
    ) -> T {
        if self.cold.swap(false, Ordering::Relaxed) {
            telemetry::cold_start();
        }
        let output = work.await;
        let mut documents = Vec::new();
        let written = self.collector.flush(&mut documents).and_then(|()| {
            if documents.is_empty() {
                Ok(())
            } else {
                out.write_all(&documents).and_then(|()| out.flush())
            }
        });
        if let Err(error) = written {
            warn!(%error, "the invocation's metrics were not written");
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dimension_is_the_lambda_function_name_else_the_registrys() {
        let on_lambda = |name: &str| {
            (name == "AWS_LAMBDA_FUNCTION_NAME").then(|| "orderflow-dev-projector".to_owned())
        };
        assert_eq!(
            function_dimension(&on_lambda, "projector"),
            "orderflow-dev-projector"
        );
        let unset = |_: &str| None;
        assert_eq!(function_dimension(&unset, "projector"), "projector");
        let empty = |_: &str| Some(String::new());
        assert_eq!(function_dimension(&empty, "projector"), "projector");
    }
}
