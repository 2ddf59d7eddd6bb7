use super::Invalid;

/// How many of one product a cart line holds: 0..=999, where 0 removes the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u16);

impl Quantity {
    pub const MAX: u16 = 999;

    /// Parses a path segment; only plain decimal digits are a quantity.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid("Invalid quantity: use a whole number from 0 to 999".into());
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        s.parse::<u16>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(invalid)
    }

    pub fn new(value: u16) -> Option<Self> {
        (value <= Self::MAX).then_some(Quantity(value))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_zero_to_999() {
        assert_eq!(Quantity::parse("0").unwrap().get(), 0);
        assert!(Quantity::parse("0").unwrap().is_zero());
        assert_eq!(Quantity::parse("999").unwrap().get(), 999);
        assert_eq!(Quantity::parse("007").unwrap().get(), 7);
    }

    #[test]
    fn refuses_out_of_range_and_non_digits() {
        for bad in ["", "1000", "-1", "+1", "1.5", "1e2", "abc", " 1", "0001"] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
