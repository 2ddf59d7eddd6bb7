use super::Invalid;

/// A payment card number: 12-19 digits (spaces and dashes ignored) passing the Luhn check.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        if (12..=19).contains(&digits.len()) && luhn_valid(&digits) {
            Ok(CardNumber(digits))
        } else {
            Err(Invalid("Invalid card number".into()))
        }
    }

    /// The last four digits, the only part of a card number that is ever shown.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber(****{})", self.last4())
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_luhn_valid_numbers_with_separators() {
        assert!(CardNumber::parse("4111 1111 1111 1111").is_ok());
        assert!(CardNumber::parse("5555-5555-5555-4444").is_ok());
        assert_eq!(
            CardNumber::parse("4242424242424242").unwrap().last4(),
            "4242"
        );
    }

    #[test]
    fn refuses_bad_checksums_and_lengths() {
        for bad in [
            "4111 1111 1111 1112",
            "",
            "0",
            "42",
            "0000 0000 0000 0000 0000",
        ] {
            assert!(CardNumber::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn debug_hides_the_number() {
        let card = CardNumber::parse("4111111111111111").unwrap();
        assert_eq!(format!("{card:?}"), "CardNumber(****1111)");
    }
}
