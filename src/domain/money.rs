use std::fmt;
use std::ops::{Add, Mul};

use serde::{Serialize, Serializer};

use super::Invalid;

/// An amount of money in integer cents, so that 3.5 x 3 is exactly 10.50. Shown as a
/// decimal number in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(i64);

impl Money {
    /// The largest amount the shop handles (ten million), far beyond any real cart.
    pub const MAX_CENTS: i64 = 1_000_000_000;

    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses a decimal number of at most two fractional digits, as in the catalog.
    pub fn from_decimal_str(s: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid(format!("Invalid price '{s}'"));
        let s = s.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| invalid())?;
        let cents = whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(frac))
            .filter(|c| *c <= Self::MAX_CENTS)
            .ok_or_else(invalid)?;
        Ok(Money(cents))
    }

    /// Converts a JSON number to a positive amount of at least one cent; more than two
    /// decimals is refused rather than silently rounded (so 5e-324 is not a 0.00 charge).
    pub fn from_positive_f64(value: f64) -> Result<Self, Invalid> {
        let invalid = || {
            Invalid("Invalid amount: use a number of at least 0.01 with at most 2 decimals".into())
        };
        if !value.is_finite() || value <= 0.0 {
            return Err(invalid());
        }
        let cents = (value * 100.0).round();
        if cents < 1.0 || (cents - value * 100.0).abs() > 1e-6 || cents > Self::MAX_CENTS as f64 {
            return Err(invalid());
        }
        Ok(Money(cents as i64))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    pub fn checked_mul(self, n: i64) -> Option<Money> {
        self.0.checked_mul(n).map(Money)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl Mul<u16> for Money {
    type Output = Money;
    fn mul(self, rhs: u16) -> Money {
        Money(self.0.saturating_mul(i64::from(rhs)))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money(0), Add::add)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_catalog_prices_exactly() {
        assert_eq!(Money::from_decimal_str("3.5").unwrap().cents(), 350);
        assert_eq!(Money::from_decimal_str("28").unwrap().cents(), 2800);
        assert_eq!(Money::from_decimal_str("4.05").unwrap().cents(), 405);
        for bad in ["", "-1", "1.234", "abc", "1e3", ".5"] {
            assert!(Money::from_decimal_str(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn multiplies_without_float_error() {
        let total = Money::from_decimal_str("3.5").unwrap() * 3;
        assert_eq!(total.cents(), 1050);
        assert_eq!(total.to_string(), "10.50");
        assert_eq!(serde_json::to_string(&total).unwrap(), "10.5");
        let sum: Money = [Money::from_cents(10), Money::from_cents(20)]
            .into_iter()
            .sum();
        assert_eq!(sum.cents(), 30);
    }

    #[test]
    fn amounts_must_be_positive_with_two_decimals() {
        assert_eq!(Money::from_positive_f64(10.5).unwrap().cents(), 1050);
        assert_eq!(Money::from_positive_f64(0.1 + 0.2).unwrap().cents(), 30);
        assert_eq!(Money::from_positive_f64(0.01).unwrap().cents(), 1);
        for bad in [
            0.0,
            -1.0,
            1.005,
            f64::NAN,
            f64::INFINITY,
            1e12,
            5e-324,
            1e-9,
            0.004,
        ] {
            assert!(Money::from_positive_f64(bad).is_err(), "{bad} accepted");
        }
    }
}
