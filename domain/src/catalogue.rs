//! The catalogue and pricing: the server decides what an order costs. Each SKU has a name, a unit
//! price in minor units, the one currency it is priced in, and whether it is sold. Pricing an
//! order's lines is pure: unknown, inactive or differently priced SKUs are refused naming the line,
//! and a price the client showed its customer that is no longer current is refused with the
//! current prices, so nothing is sold at a price the customer did not see.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ids::Sku;
use crate::money::Currency;
use crate::order::{LineItem, Quantity, UnitPrice};
use crate::validation::{ValidationError, text};

/// The longest product name.
pub const MAX_NAME_LEN: usize = 200;

/// One SKU of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// The SKU.
    pub sku: Sku,
    /// What it is, for people.
    #[serde(deserialize_with = "product_name")]
    pub name: String,
    /// Its price per unit, in minor units of `currency`.
    pub unit_price: UnitPrice,
    /// The currency it is priced in.
    pub currency: Currency,
    /// Whether it is sold now.
    pub active: bool,
}

fn product_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let raw = String::deserialize(deserializer)?;
    text("name", &raw, MAX_NAME_LEN).map_err(serde::de::Error::custom)
}

/// A line as the client asks for it: a SKU, a quantity and, optionally, the unit price the client
/// showed its customer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedLine {
    /// What.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
    /// The price the customer saw, if the client sends it: checked against the catalogue.
    #[serde(default)]
    pub unit_price: Option<UnitPrice>,
}

/// Why lines cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// The catalogue has no such SKU.
    #[error("items[{index}].sku: {sku} is not in the catalogue")]
    UnknownSku {
        /// The line.
        index: usize,
        /// Its SKU.
        sku: Sku,
    },
    /// The SKU is no longer sold.
    #[error("items[{index}].sku: {sku} is not sold any more")]
    Inactive {
        /// The line.
        index: usize,
        /// Its SKU.
        sku: Sku,
    },
    /// The SKU is priced in another currency than the order's.
    #[error("items[{index}].sku: {sku} is priced in {priced_in}, not {requested}")]
    NotPricedIn {
        /// The line.
        index: usize,
        /// Its SKU.
        sku: Sku,
        /// The order's currency.
        requested: Currency,
        /// The catalogue's currency for the SKU.
        priced_in: Currency,
    },
    /// A unit price the client sent is not the catalogue's.
    #[error("the prices changed: {} line(s) differ from the catalogue", changed.len())]
    PriceChanged {
        /// The lines whose price differs.
        changed: Vec<usize>,
        /// The catalogue entries of every requested line, in line order.
        current: Vec<CatalogueEntry>,
    },
}

impl PricingError {
    /// The field a refusal names (`items[2].sku`), for the 422 answers.
    pub fn field(&self) -> String {
        match self {
            Self::UnknownSku { index, .. }
            | Self::Inactive { index, .. }
            | Self::NotPricedIn { index, .. } => format!("items[{index}].sku"),
            Self::PriceChanged { changed, .. } => changed
                .first()
                .map_or_else(|| "items".to_owned(), |i| format!("items[{i}].unit_price")),
        }
    }
}

/// Prices `lines` in `currency` from `catalogue` (the entries of at least the requested SKUs):
/// the line items an order is placed with, at the catalogue's prices.
pub fn price_lines(
    lines: &[RequestedLine],
    currency: Currency,
    catalogue: &HashMap<Sku, CatalogueEntry>,
) -> Result<Vec<LineItem>, PricingError> {
    let mut entries = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let sku = line.sku.clone();
        let entry = catalogue.get(&line.sku).ok_or(PricingError::UnknownSku {
            index,
            sku: sku.clone(),
        })?;
        if !entry.active {
            return Err(PricingError::Inactive { index, sku });
        }
        if entry.currency != currency {
            return Err(PricingError::NotPricedIn {
                index,
                sku,
                requested: currency,
                priced_in: entry.currency,
            });
        }
        entries.push(entry);
    }
    let changed: Vec<usize> = lines
        .iter()
        .zip(&entries)
        .enumerate()
        .filter(|(_, (line, entry))| line.unit_price.is_some_and(|p| p != entry.unit_price))
        .map(|(index, _)| index)
        .collect();
    if !changed.is_empty() {
        return Err(PricingError::PriceChanged {
            changed,
            current: entries.into_iter().cloned().collect(),
        });
    }
    Ok(lines
        .iter()
        .zip(entries)
        .map(|(line, entry)| LineItem {
            sku: line.sku.clone(),
            quantity: line.quantity,
            unit_price: entry.unit_price,
        })
        .collect())
}

/// Parses a catalogue file: `{"items": [{"sku", "name", "unit_price", "currency", "active"}]}`,
/// every SKU once.
pub fn parse_catalogue(json: &str) -> Result<Vec<CatalogueEntry>, ValidationError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        items: Vec<CatalogueEntry>,
    }
    let file: File = serde_json::from_str(json)
        .map_err(|e| ValidationError::new("catalogue", format_args!("is not valid: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for entry in &file.items {
        if !seen.insert(entry.sku.clone()) {
            return Err(ValidationError::new(
                "catalogue",
                format_args!("lists {} twice", entry.sku),
            ));
        }
    }
    Ok(file.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sku: &str, price: u64, currency: Currency, active: bool) -> CatalogueEntry {
        CatalogueEntry {
            sku: Sku::parse(sku).unwrap(),
            name: format!("product {sku}"),
            unit_price: UnitPrice::try_from(price).unwrap(),
            currency,
            active,
        }
    }

    fn catalogue() -> HashMap<Sku, CatalogueEntry> {
        [
            entry("tea", 450, Currency::EUR, true),
            entry("mug", 1200, Currency::EUR, true),
            entry("old", 100, Currency::EUR, false),
            entry("usd", 999, Currency::USD, true),
        ]
        .into_iter()
        .map(|e| (e.sku.clone(), e))
        .collect()
    }

    fn line(sku: &str, quantity: u32, unit_price: Option<u64>) -> RequestedLine {
        RequestedLine {
            sku: Sku::parse(sku).unwrap(),
            quantity: Quantity::try_from(quantity).unwrap(),
            unit_price: unit_price.map(|p| UnitPrice::try_from(p).unwrap()),
        }
    }

    #[test]
    fn lines_are_priced_from_the_catalogue_whatever_the_client_leaves_out() {
        let items = price_lines(
            &[line("tea", 2, None), line("mug", 1, Some(1200))],
            Currency::EUR,
            &catalogue(),
        )
        .unwrap();
        let prices: Vec<u64> = items.iter().map(|i| i.unit_price.into()).collect();
        assert_eq!(prices, [450, 1200]);
        assert_eq!(items[0].quantity.get(), 2);
    }

    #[test]
    fn unknown_inactive_and_differently_priced_skus_are_refused_naming_the_line() {
        let refuse =
            |lines: &[RequestedLine]| price_lines(lines, Currency::EUR, &catalogue()).unwrap_err();
        let unknown = refuse(&[line("tea", 1, None), line("nope", 1, None)]);
        assert!(matches!(unknown, PricingError::UnknownSku { index: 1, .. }));
        assert_eq!(unknown.field(), "items[1].sku");
        let inactive = refuse(&[line("old", 1, None)]);
        assert!(matches!(inactive, PricingError::Inactive { index: 0, .. }));
        let currency = refuse(&[line("usd", 1, None)]);
        assert!(matches!(
            currency,
            PricingError::NotPricedIn {
                index: 0,
                priced_in: Currency::USD,
                ..
            }
        ));
    }

    #[test]
    fn a_price_the_client_showed_that_is_no_longer_current_is_refused_with_the_current_prices() {
        let changed = price_lines(
            &[line("tea", 1, Some(450)), line("mug", 1, Some(1000))],
            Currency::EUR,
            &catalogue(),
        )
        .unwrap_err();
        let PricingError::PriceChanged { changed, current } = &changed else {
            panic!("{changed:?}");
        };
        assert_eq!(changed, &[1]);
        assert_eq!(current.len(), 2);
        assert_eq!(u64::from(current[1].unit_price), 1200);
    }

    #[test]
    fn a_catalogue_file_lists_each_sku_once_with_valid_fields() {
        let good = r#"{"items":[{"sku":"tea","name":"Green tea","unit_price":450,"currency":"EUR","active":true}]}"#;
        assert_eq!(parse_catalogue(good).unwrap()[0].name, "Green tea");
        let twice = r#"{"items":[
            {"sku":"tea","name":"a","unit_price":1,"currency":"EUR","active":true},
            {"sku":"tea","name":"b","unit_price":1,"currency":"EUR","active":true}]}"#;
        assert!(parse_catalogue(twice).unwrap_err().rule.contains("twice"));
        for bad in [
            r#"{"items":[{"sku":"tea","name":"","unit_price":1,"currency":"EUR","active":true}]}"#,
            r#"{"items":[{"sku":"tea","name":"a","unit_price":0,"currency":"EUR","active":true}]}"#,
            r#"{"items":[{"sku":"tea","name":"a","unit_price":1,"currency":"XXX","active":true}]}"#,
            r#"{"items":[{"sku":"t e","name":"a","unit_price":1,"currency":"EUR","active":true}]}"#,
        ] {
            assert!(parse_catalogue(bad).is_err(), "{bad}");
        }
    }
}
