use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::{is_token, percent_decode, Invalid};

type HmacSha256 = Hmac<Sha256>;

/// The id part of a `session_id` value (`<sid>` of `<sid>.<signature>`), which names a
/// session and its cart: 1-128 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub const MAX_LEN: usize = 128;

    /// Takes `<sid>.<signature>` or `<sid>` (URL-encoded or not) and keeps the sid; the
    /// signature is checked at the trust boundary (the web-gateway), not here.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = percent_decode(value);
        let sid = value.split('.').next().unwrap_or_default();
        if is_token(sid, Self::MAX_LEN) {
            Ok(SessionId(sid.to_string()))
        } else {
            Err(Invalid("Invalid session_id".into()))
        }
    }

    /// A fresh random id: 128 bits as 32 hex characters.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        SessionId(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Signs session ids with HMAC-SHA256 so that a client cannot name another's session.
#[derive(Clone)]
pub struct SessionSigner {
    mac: HmacSha256,
}

impl SessionSigner {
    pub fn new(secret: &[u8]) -> Self {
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        SessionSigner { mac }
    }

    /// The cookie value for `sid`: `<sid>.<hex signature>`.
    pub fn sign(&self, sid: &SessionId) -> String {
        let mut mac = self.mac.clone();
        mac.update(sid.as_str().as_bytes());
        format!("{sid}.{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The session id of a correctly signed value (URL-encoded or not), else `None`.
    pub fn verify(&self, value: &str) -> Option<SessionId> {
        let value = percent_decode(value);
        let (sid, signature) = value.split_once('.')?;
        let signature = hex::decode(signature).ok()?;
        let mut mac = self.mac.clone();
        mac.update(sid.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&signature).ok()?;
        SessionId::parse(sid).ok()
    }
}

impl fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSigner(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_takes_the_part_before_the_signature() {
        assert_eq!(SessionId::parse("abc.def").unwrap().as_str(), "abc");
        assert_eq!(SessionId::parse("abc").unwrap().as_str(), "abc");
        assert_eq!(SessionId::parse("abc%2Edef").unwrap().as_str(), "abc");
    }

    #[test]
    fn session_id_refuses_unsafe_keys() {
        for bad in ["", ".sig", "a:b", "a b", "*", &"x".repeat(129)] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn random_ids_are_distinct_tokens() {
        let (a, b) = (SessionId::random(), SessionId::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(SessionId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn signatures_verify_only_with_the_same_secret() {
        let signer = SessionSigner::new(b"secret");
        let sid = SessionId::random();
        let cookie = signer.sign(&sid);
        assert_eq!(signer.verify(&cookie), Some(sid.clone()));
        assert_eq!(
            signer.verify(&cookie.replace('.', "%2E")),
            Some(sid.clone())
        );
        assert_eq!(SessionSigner::new(b"other").verify(&cookie), None);
    }

    #[test]
    fn forged_or_unsigned_values_fail() {
        let signer = SessionSigner::new(b"secret");
        let cookie = signer.sign(&SessionId::parse("victim").unwrap());
        let forged = cookie.replacen("victim", "attacker", 1);
        assert_eq!(signer.verify(&forged), None);
        assert_eq!(signer.verify("victim"), None);
        assert_eq!(signer.verify("victim."), None);
        assert_eq!(signer.verify("victim.zz"), None);
    }
}
