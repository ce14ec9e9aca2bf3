//! The coupon aggregate of the alert context (`coupon#<coupon_id>`). A coupon compensates one
//! delivery delay; its id is derived from the delay, so a delay delivered three times still issues
//! one coupon.

use serde::{Deserialize, Serialize};

use crate::events::event_enum;
use crate::ids::{CouponId, CustomerId, DeliveryId, OrderId};
use crate::validation::ValidationError;
use crate::{Aggregate, DomainError};

/// What can be asked of a coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponCommand {
    /// Issue the compensation for a delay.
    Issue {
        /// The customer it is for.
        customer_id: CustomerId,
        /// The delayed order.
        order_id: OrderId,
        /// The delayed delivery.
        delivery_id: DeliveryId,
        /// Which delay of that delivery.
        delay_number: u32,
        /// The discount, 1 to 100 percent.
        discount_percent: u8,
    },
}

/// `CouponIssued` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
pub struct CouponIssued {
    /// The coupon (derived from the delay).
    pub coupon_id: CouponId,
    /// Who may use it.
    pub customer_id: CustomerId,
    /// The delayed order.
    pub order_id: OrderId,
    /// The delayed delivery.
    pub delivery_id: DeliveryId,
    /// Which delay it compensates.
    pub delay_number: u32,
    /// The discount in percent.
    pub discount_percent: u8,
}

event_enum! {
    /// Everything that happens to a coupon.
    CouponEvent {
        CouponIssued(CouponIssued) = 1,
    }
}

/// The coupon's decision state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coupon {
    issued: bool,
}

impl Aggregate for Coupon {
    type Command = CouponCommand;
    type Event = CouponEvent;
    const KIND: &'static str = "coupon";

    fn decide(&self, command: &CouponCommand) -> Result<Vec<CouponEvent>, DomainError> {
        let CouponCommand::Issue {
            customer_id,
            order_id,
            delivery_id,
            delay_number,
            discount_percent,
        } = command;
        if !(1..=100).contains(discount_percent) {
            return Err(
                ValidationError::new("discount_percent", "must be between 1 and 100").into(),
            );
        }
        if *delay_number == 0 {
            return Err(ValidationError::new("delay_number", "must be at least 1").into());
        }
        if self.issued {
            return Ok(vec![]);
        }
        Ok(vec![CouponEvent::CouponIssued(CouponIssued {
            coupon_id: CouponId::for_delay(delivery_id, *delay_number),
            customer_id: customer_id.clone(),
            order_id: order_id.clone(),
            delivery_id: delivery_id.clone(),
            delay_number: *delay_number,
            discount_percent: *discount_percent,
        })])
    }

    fn evolve(mut self, event: &CouponEvent) -> Self {
        match event {
            CouponEvent::CouponIssued(_) => self.issued = true,
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::Event;
    use crate::testing::given;

    fn delivery_id() -> DeliveryId {
        DeliveryId::parse("d-o1").unwrap()
    }

    fn issue(delay_number: u32, discount_percent: u8) -> CouponCommand {
        CouponCommand::Issue {
            customer_id: CustomerId::parse("c1").unwrap(),
            order_id: OrderId::parse("o1").unwrap(),
            delivery_id: delivery_id(),
            delay_number,
            discount_percent,
        }
    }

    fn issued(delay_number: u32, discount_percent: u8) -> CouponEvent {
        CouponEvent::CouponIssued(CouponIssued {
            coupon_id: CouponId::for_delay(&delivery_id(), delay_number),
            customer_id: CustomerId::parse("c1").unwrap(),
            order_id: OrderId::parse("o1").unwrap(),
            delivery_id: delivery_id(),
            delay_number,
            discount_percent,
        })
    }

    #[test]
    fn a_delay_is_compensated_with_a_coupon_named_after_the_delay() {
        let state = given::<Coupon>([])
            .when(&issue(1, 10))
            .then([issued(1, 10)]);
        assert!(state.issued);
        let CouponEvent::CouponIssued(coupon) = issued(1, 10);
        assert_eq!(coupon.coupon_id.as_str(), "c-d-o1-1");
    }

    #[test]
    fn the_same_delay_delivered_three_times_issues_one_coupon() {
        let mut history: Vec<CouponEvent> = Vec::new();
        for _ in 0..3 {
            let decided = Coupon::replay(&history).decide(&issue(1, 10)).unwrap();
            history.extend(decided);
        }
        assert_eq!(history, [issued(1, 10)]);
        given::<Coupon>(history).when(&issue(1, 10)).then_nothing();
    }

    #[test]
    fn a_repeated_issue_with_another_discount_still_issues_nothing() {
        given::<Coupon>([issued(1, 10)])
            .when(&issue(1, 25))
            .then_nothing();
    }

    #[test]
    fn each_delay_of_a_delivery_gets_its_own_coupon() {
        let first = given::<Coupon>([]).when(&issue(1, 10)).then_events();
        let second = given::<Coupon>([]).when(&issue(2, 10)).then_events();
        let ids = [&first[0], &second[0]].map(|CouponEvent::CouponIssued(c)| c.coupon_id.clone());
        assert_eq!(ids.map(|id| id.to_string()), ["c-d-o1-1", "c-d-o1-2"]);
    }

    #[test]
    fn the_discount_must_be_between_1_and_100_percent() {
        for discount in [0, 101, u8::MAX] {
            given::<Coupon>([])
                .when(&issue(1, discount))
                .then_invalid("discount_percent");
        }
        for discount in [1, 100] {
            given::<Coupon>([])
                .when(&issue(1, discount))
                .then([issued(1, discount)]);
        }
    }

    #[test]
    fn delay_numbers_start_at_one() {
        given::<Coupon>([])
            .when(&issue(0, 10))
            .then_invalid("delay_number");
    }

    #[test]
    fn an_invalid_repeat_is_refused_even_after_the_coupon_was_issued() {
        given::<Coupon>([issued(1, 10)])
            .when(&issue(1, 0))
            .then_invalid("discount_percent");
    }

    #[test]
    fn a_coupon_is_not_issued_until_its_event_is_applied() {
        assert!(!Coupon::default().issued);
        assert!(Coupon::default().evolve(&issued(1, 10)).issued);
        assert_eq!(Coupon::replay(&[issued(1, 10)]), Coupon { issued: true });
    }

    #[test]
    fn the_issued_coupon_carries_everything_the_customer_needs_on_the_wire() {
        let event = issued(2, 15);
        assert_eq!(event.event_type(), "CouponIssued");
        assert_eq!(event.schema_version(), 1);
        assert_eq!(
            event.to_data(),
            json!({
                "coupon_id": "c-d-o1-2",
                "customer_id": "c1",
                "order_id": "o1",
                "delivery_id": "d-o1",
                "delay_number": 2,
                "discount_percent": 15,
            })
        );
    }
}
