//! The AWS SDK configuration every function loads: the environment's region, credentials and
//! endpoints, with time limits on every call. Without them a connection that stalls (a dependency
//! that hangs, a lost packet) holds an invocation until the function's own timeout, and the SDK
//! never retries it. Each attempt gets [`ATTEMPT_TIMEOUT`], a whole call (the SDK's standard retries
//! included: [`MAX_ATTEMPTS`] attempts with backoff) [`OPERATION_TIMEOUT`], which stays under the
//! 10 s timeout of `template.yaml`'s functions, so a call that cannot succeed fails in time for the
//! function to report it.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one attempt of a call may take, answer included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole call may take, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(7);
/// Attempts per call (the first and its retries), with the SDK's standard backoff.
pub const MAX_ATTEMPTS: u32 = 3;

/// The time limits, on their own (for clients built from another configuration).
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the SDK configuration from the environment, with [`timeouts`] and the standard retries.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_with_all_its_attempts_ends_before_the_function_times_out() {
        let function_timeout = Duration::from_secs(10);
        assert!(ATTEMPT_TIMEOUT * MAX_ATTEMPTS <= OPERATION_TIMEOUT);
        assert!(OPERATION_TIMEOUT < function_timeout);
        let config = timeouts();
        assert_eq!(config.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(config.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(config.connect_timeout(), Some(CONNECT_TIMEOUT));
    }
}
