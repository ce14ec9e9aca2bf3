//! A validated delivery address. It is personal data: its `Debug` shows only the country, so it
//! can never reach a log line by accident.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::envelope::StoredEvent;
use crate::validation::{ValidationError, text};

/// The field events that carry an address keep it in (`OrderPlaced`, `DeliveryScheduled`).
pub const ADDRESS_FIELD: &str = "delivery_address";

/// Takes the delivery address out of every event of `history`: what a caller who may read the
/// history but not the address (a customer, a courier) is shown.
pub fn strip_addresses(history: &mut [StoredEvent]) {
    for event in history {
        if let Some(data) = event.data.as_object_mut() {
            data.remove(ADDRESS_FIELD);
        }
    }
}

/// Longest accepted address line.
pub const MAX_LINE_LEN: usize = 200;

/// Longest accepted postal code.
pub const MAX_POSTAL_CODE_LEN: usize = 16;

/// Where a delivery goes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(try_from = "UncheckedAddress")]
pub struct Address {
    /// Who receives the parcel.
    #[cfg_attr(feature = "schemas", schemars(length(min = 1, max = MAX_LINE_LEN)))]
    recipient: String,
    /// Street and number.
    #[cfg_attr(feature = "schemas", schemars(length(min = 1, max = MAX_LINE_LEN)))]
    line1: String,
    /// Second line, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemas", schemars(length(min = 1, max = MAX_LINE_LEN)))]
    line2: Option<String>,
    /// City.
    #[cfg_attr(feature = "schemas", schemars(length(min = 1, max = MAX_LINE_LEN)))]
    city: String,
    /// Postal code.
    #[cfg_attr(feature = "schemas", schemars(length(min = 1, max = MAX_POSTAL_CODE_LEN)))]
    postal_code: String,
    /// ISO 3166-1 alpha-2 country code, upper case.
    #[cfg_attr(feature = "schemas", schemars(regex(pattern = r"^[A-Z]{2}$")))]
    country: String,
}

/// The raw shape of an address as it arrives, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
pub struct UncheckedAddress {
    /// Who receives the parcel.
    pub recipient: String,
    /// Street and number.
    pub line1: String,
    /// Optional second line.
    #[serde(default)]
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
}

impl Address {
    /// Validates every field; the error names the first rejected one.
    pub fn parse(raw: UncheckedAddress) -> Result<Self, ValidationError> {
        let country = raw.country.trim();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ValidationError::new(
                "country",
                "must be an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        let line2 = match raw.line2.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(line) => Some(text("line2", line, MAX_LINE_LEN)?),
        };
        let postal_code = text("postal_code", &raw.postal_code, MAX_POSTAL_CODE_LEN)?;
        Ok(Self {
            recipient: text("recipient", &raw.recipient, MAX_LINE_LEN)?,
            line1: text("line1", &raw.line1, MAX_LINE_LEN)?,
            line2,
            city: text("city", &raw.city, MAX_LINE_LEN)?,
            postal_code,
            country: country.to_owned(),
        })
    }

    /// Who receives the parcel.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }
    /// Street and number.
    pub fn line1(&self) -> &str {
        &self.line1
    }
    /// Optional second line.
    pub fn line2(&self) -> Option<&str> {
        self.line2.as_deref()
    }
    /// City.
    pub fn city(&self) -> &str {
        &self.city
    }
    /// Postal code.
    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }
    /// ISO 3166-1 alpha-2 country code.
    pub fn country(&self) -> &str {
        &self.country
    }
}

impl TryFrom<UncheckedAddress> for Address {
    type Error = ValidationError;
    fn try_from(raw: UncheckedAddress) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Address")
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

/// A valid address for tests (tests and feature `testkit` only; `testkit::sample_address`).
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::expect_used)]
pub fn sample() -> Address {
    Address::parse(UncheckedAddress {
        recipient: "Ada Lovelace".into(),
        line1: "12 Analytical Street".into(),
        line2: None,
        city: "London".into(),
        postal_code: "N1 9GU".into(),
        country: "GB".into(),
    })
    .expect("valid sample address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> UncheckedAddress {
        UncheckedAddress {
            recipient: "Ada Lovelace".into(),
            line1: "12 Analytical Street".into(),
            line2: Some("  ".into()),
            city: "London".into(),
            postal_code: "N1 9GU".into(),
            country: "GB".into(),
        }
    }

    #[test]
    fn a_valid_address_parses_and_blank_line2_is_dropped() {
        let address = Address::parse(raw()).unwrap();
        assert_eq!(address.line2(), None);
        assert_eq!(address.city(), "London");
    }

    #[test]
    fn each_field_is_checked_and_named() {
        type Breaker = fn(&mut UncheckedAddress);
        let cases: [(Breaker, &str); 5] = [
            (|a| a.recipient.clear(), "recipient"),
            (|a| a.line1 = "x".repeat(MAX_LINE_LEN + 1), "line1"),
            (|a| a.city = " ".into(), "city"),
            (
                |a| a.postal_code = "1234567890ABCDEFG".into(),
                "postal_code",
            ),
            (|a| a.country = "gb".into(), "country"),
        ];
        for (break_it, field) in cases {
            let mut input = raw();
            break_it(&mut input);
            assert_eq!(Address::parse(input).unwrap_err().field, field);
        }
    }

    #[test]
    fn debug_never_shows_personal_data() {
        let shown = format!("{:?}", Address::parse(raw()).unwrap());
        assert_eq!(shown, "Address { country: \"GB\", .. }");
    }

    #[test]
    fn deserialising_validates() {
        let json = r#"{"recipient":"A","line1":"B","city":"C","postal_code":"D","country":"XX1"}"#;
        assert!(serde_json::from_str::<Address>(json).is_err());
    }
}
