use std::fmt;

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret {
    value: String,
    pub generated: bool,
}

impl Secret {
    pub fn new(value: String) -> Self {
        Secret {
            value,
            generated: false,
        }
    }

    pub fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Secret {
            value: hex::encode(bytes),
            generated: true,
        }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_hidden() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(Secret::random().generated);
    }
}
