//! Money as integer minor units plus an ISO 4217 currency. There is no float anywhere near a price.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// An amount in minor units (cents) of some currency. Arithmetic is checked: an overflow is an
/// error, never a wrap.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema), schemars(inline))]
#[serde(transparent)]
pub struct Cents(u64);

impl Cents {
    /// Zero.
    pub const ZERO: Cents = Cents(0);

    /// An amount of `value` minor units.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The amount in minor units.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// `self × factor`, or `None` on overflow.
    pub fn checked_mul(self, factor: u64) -> Option<Cents> {
        self.0.checked_mul(factor).map(Cents)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! currencies {
    ($($code:ident => $digits:literal),+ $(,)?) => {
        /// The ISO 4217 currencies orderflow accepts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum Currency {
            $(
                #[doc = concat!("ISO 4217 `", stringify!($code), "`.")]
                $code,
            )+
        }

        impl Currency {
            /// Every accepted currency.
            pub const ALL: &'static [Currency] = &[$(Currency::$code),+];

            /// The ISO 4217 code.
            pub const fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code)),+ }
            }

            /// How many minor-unit digits the currency has (2 for EUR, 0 for JPY).
            pub const fn minor_digits(self) -> u32 {
                match self { $(Currency::$code => $digits),+ }
            }
        }

        impl FromStr for Currency {
            type Err = ValidationError;
            fn from_str(code: &str) -> Result<Self, Self::Err> {
                match code {
                    $(stringify!($code) => Ok(Currency::$code),)+
                    _ => Err(ValidationError::new(
                        "currency",
                        format_args!("must be one of {}", [$(stringify!($code)),+].join(", ")),
                    )),
                }
            }
        }
    };
}

currencies!(
    EUR => 2, USD => 2, GBP => 2, CHF => 2, SEK => 2, NOK => 2, DKK => 2, PLN => 2,
    CZK => 2, CAD => 2, AUD => 2, JPY => 0,
);

impl TryFrom<String> for Currency {
    type Error = ValidationError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        code.parse()
    }
}

impl From<Currency> for &'static str {
    fn from(currency: Currency) -> Self {
        currency.code()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

// One of the accepted ISO 4217 codes.
#[cfg(feature = "schemas")]
crate::contracts::inline_json_schema!(
    Currency,
    schemars::json_schema!({
        "type": "string",
        "enum": Currency::ALL.iter().map(|c| c.code()).collect::<Vec<_>>(),
    })
);

/// An amount together with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units.
    pub amount: Cents,
    /// The currency the minor units are of.
    pub currency: Currency,
}

impl fmt::Display for Money {
    /// `12.34 EUR`, `1200 JPY`: exact, from the integer amount.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let value = self.amount.value();
        if digits == 0 {
            return write!(f, "{value} {}", self.currency);
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{}.{:0width$} {}",
            value / scale,
            value % scale,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parses_known_codes_only() {
        assert_eq!("EUR".parse::<Currency>(), Ok(Currency::EUR));
        let err = "eur".parse::<Currency>().unwrap_err();
        assert_eq!(err.field, "currency");
        assert!(
            err.rule.starts_with("must be one of EUR, USD"),
            "{}",
            err.rule
        );
        assert!("XXX".parse::<Currency>().is_err());
        assert_eq!(serde_json::to_string(&Currency::JPY).unwrap(), "\"JPY\"");
        assert!(serde_json::from_str::<Currency>("\"BTC\"").is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Cents::new(250).checked_mul(3), Some(Cents::new(750)));
        assert_eq!(Cents::new(u64::MAX).checked_add(Cents::new(1)), None);
        assert_eq!(Cents::new(u64::MAX / 2 + 1).checked_mul(2), None);
    }

    #[test]
    fn money_displays_exactly() {
        let eur = Money {
            amount: Cents::new(1205),
            currency: Currency::EUR,
        };
        assert_eq!(eur.to_string(), "12.05 EUR");
        let yen = Money {
            amount: Cents::new(1200),
            currency: Currency::JPY,
        };
        assert_eq!(yen.to_string(), "1200 JPY");
    }
}
