//! The coupon aggregate of the alert context (`coupon#<coupon_id>`). A coupon compensates one
//! delivery delay; its id is derived from the delay, so a delay delivered three times still issues
//! one coupon.

use serde::{Deserialize, Serialize};

use super::{Aggregate, DomainError};
use crate::events::event_enum;
use crate::ids::{CouponId, CustomerId, DeliveryId, OrderId};
use crate::validation::ValidationError;

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
