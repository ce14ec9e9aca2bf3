//! The aggregates. Each is pure: `decide(&state, &command) -> Result<Vec<Event>, DomainError>` and
//! `evolve(state, &event) -> state`. No I/O, no clock, no AWS or tokio types: time and ids arrive in
//! the commands, so every test is exact.
//!
//! Reactions to other contexts' events (ship, complete, schedule, cancel a delivery …) are
//! idempotent: repeating one, or receiving it after a later one, decides no new events instead of
//! failing, because every message is delivered at least once and EventBridge does not order.

use crate::events::Event;
use crate::validation::ValidationError;

/// A consistency boundary with its own event stream `<KIND>#<id>`.
pub trait Aggregate: Default + Clone {
    /// What can be asked of it.
    type Command;
    /// What it records.
    type Event: Event;
    /// The stream prefix, e.g. `order`.
    const KIND: &'static str;

    /// Decides which events a command produces in the current state, or why it is refused.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// Applies one event to the state.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds a history into a state.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command needs an aggregate that has no events yet.
    #[error("{kind} not found")]
    NotFound {
        /// The aggregate kind.
        kind: &'static str,
    },
    /// The command would create an aggregate that exists already.
    #[error("{kind} already exists")]
    AlreadyExists {
        /// The aggregate kind.
        kind: &'static str,
    },
    /// The command is not allowed in the aggregate's current status.
    #[error("cannot {command} the {kind}: it is {status}")]
    InvalidTransition {
        /// The aggregate kind.
        kind: &'static str,
        /// The refused command, in words (`cancel`, `dispatch` …).
        command: &'static str,
        /// The status that forbids it.
        status: &'static str,
    },
    /// The actor is not the one the aggregate belongs to (a courier acting on a delivery another
    /// courier dispatched).
    #[error("cannot {command} the {kind}: it is assigned to someone else")]
    NotAssigned {
        /// The aggregate kind.
        kind: &'static str,
        /// The refused command, in words.
        command: &'static str,
    },
    /// The aggregate reached a limit the command would pass.
    #[error("cannot {command} the {kind} again: it reached its limit of {limit}")]
    LimitReached {
        /// The aggregate kind.
        kind: &'static str,
        /// The refused command, in words.
        command: &'static str,
        /// The limit.
        limit: u32,
    },
    /// A value in the command breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}
