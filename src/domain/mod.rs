//! Input parsed once at a handler's edge into types that cannot hold a bad value.

mod card;
mod delay;
mod ids;
mod money;
mod product_id;
mod quantity;
mod secret;
mod session;

pub use card::CardNumber;
pub use delay::DelayRange;
pub use ids::{AttemptKey, OrderId, TransactionId};
pub use money::Money;
pub use product_id::ProductId;
pub use quantity::Quantity;
pub use secret::Secret;
pub use session::{SessionId, SessionSigner};

/// Why a piece of input was refused; the text is safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// True when `s` has 1..=max characters of `[A-Za-z0-9_-]`.
fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(is_token_char)
}

/// Decodes `%XX` escapes; anything malformed is kept as it is (and then fails validation).
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return s.into();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match decoded {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned().into()
}
