use std::fmt;

use super::{is_token, Invalid};

/// A catalog product id: 1-64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProductId(String);

impl ProductId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if is_token(s, Self::MAX_LEN) {
            Ok(ProductId(s.to_string()))
        } else {
            Err(Invalid(
                "Invalid product id: use 1-64 characters of A-Z, a-z, 0-9, _ and -".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_catalog_style_ids() {
        assert_eq!(ProductId::parse("f95e2475").unwrap().as_str(), "f95e2475");
        assert!(ProductId::parse("a_B-9").is_ok());
        assert!(ProductId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_odd_characters() {
        for bad in ["", "a b", "a/b", "..", "ü", "a%20", &"x".repeat(65)] {
            assert!(ProductId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
