//! Identifiers of orders, payments and checkout attempts: random when the shop makes
//! them, parsed as tokens when a client or another service names them.

use std::fmt;

use rand::Rng;

use super::{is_token, Invalid};

/// Declares a token id type: `parse` takes 1..=MAX characters of `[A-Za-z0-9_-]`,
/// `random` makes 128 random bits as 32 hex characters.
macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, Invalid> {
                if is_token(s, Self::MAX_LEN) {
                    Ok($name(s.to_string()))
                } else {
                    Err(Invalid(format!(
                        "Invalid {}: use 1-{} characters of A-Z, a-z, 0-9, _ and -",
                        $what,
                        Self::MAX_LEN
                    )))
                }
            }

            pub fn random() -> Self {
                $name(hex::encode(rand::thread_rng().gen::<[u8; 16]>()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

token_id!(
    /// The number of a placed order, shown to the shopper.
    OrderId,
    64,
    "order_id"
);
token_id!(
    /// A payment's id, sent by checkout to payment.
    TransactionId,
    64,
    "transaction_id"
);
token_id!(
    /// One attempt to place an order (an `Idempotency-Key`, e.g. a UUID): every repeat
    /// of an attempt answers its first result.
    AttemptKey,
    128,
    "Idempotency-Key"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_tokens_and_random_ones_are_distinct() {
        assert!(OrderId::parse("6f1c-Order_1").is_ok());
        assert!(AttemptKey::parse("3b241101-e2bb-4255-8caf-4136c566a962").is_ok());
        for bad in ["", "a b", "a/b", "x:y", &"k".repeat(129)] {
            assert!(AttemptKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(TransactionId::parse(&"t".repeat(65)).is_err());
        let (a, b) = (OrderId::random(), OrderId::random());
        assert_ne!(a, b);
        assert_eq!(OrderId::parse(a.as_str()), Ok(a));
    }
}
