//! Given / when / then for aggregates:
//!
//! ```
//! use domain::coupon::{Coupon, CouponCommand};
//! use domain::ids::{CustomerId, DeliveryId, OrderId};
//! use testkit::given;
//!
//! let issue = CouponCommand::Issue {
//!     customer_id: CustomerId::parse("c1").unwrap(),
//!     order_id: OrderId::parse("o1").unwrap(),
//!     delivery_id: DeliveryId::parse("d-o1").unwrap(),
//!     delay_number: 1,
//!     discount_percent: 10,
//! };
//! let issued = given::<Coupon>([]).when(&issue).then_events();
//! given::<Coupon>(issued).when(&issue).then_nothing();
//! ```

use crate::{Aggregate, DomainError};

/// An aggregate with a history.
pub struct Given<A: Aggregate> {
    state: A,
}

/// The result of a command on it.
pub struct When<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, DomainError>,
}

/// Starts a scenario from a history of events.
pub fn given<A: Aggregate>(history: impl IntoIterator<Item = A::Event>) -> Given<A> {
    Given {
        state: history.into_iter().fold(A::default(), |s, e| s.evolve(&e)),
    }
}

impl<A: Aggregate> Given<A> {
    /// Decides a command.
    pub fn when(self, command: &A::Command) -> When<A> {
        let result = self.state.decide(command);
        When {
            state: self.state,
            result,
        }
    }

    /// The state after the history.
    pub fn state(&self) -> &A {
        &self.state
    }
}

impl<A: Aggregate> When<A>
where
    A::Event: PartialEq,
{
    /// Asserts exactly these events were decided.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "decided events differ");
                events.iter().fold(self.state, |s, e| s.evolve(e))
            }
            Err(error) => panic!("expected events {expected:?}, got error {error:?}"),
        }
    }

    /// Asserts the command succeeded and returns the decided events (at least one).
    #[track_caller]
    pub fn then_events(self) -> Vec<A::Event> {
        match self.result {
            Ok(events) if !events.is_empty() => events,
            Ok(_) => panic!("expected events, the command decided none"),
            Err(error) => panic!("expected events, got error {error:?}"),
        }
    }

    /// Asserts the command was accepted and changed nothing (an idempotent repeat).
    #[track_caller]
    pub fn then_nothing(self) {
        match self.result {
            Ok(events) => assert!(events.is_empty(), "expected no events, got {events:?}"),
            Err(error) => panic!("expected no events, got error {error:?}"),
        }
    }

    /// Asserts the command was refused with this error.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }

    /// Asserts the command was refused because `field` is invalid.
    #[track_caller]
    pub fn then_invalid(self, field: &str) {
        match self.result {
            Err(DomainError::Invalid(error)) => assert_eq!(error.field, field, "{error}"),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
}
