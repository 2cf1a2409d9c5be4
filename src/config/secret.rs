//! Secrets from `{ env: NAME }` or `{ file: path }`, resolved once at load time.
//! `Debug` never prints the value, so a snapshot can be logged without leaking keys.
//! A loaded secret is trimmed, non-empty printable ASCII (`wire::secret`), so the head
//! writers can copy it into `authorization` or `x-api-key` as it is.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, for messages: `env LOCAL_API_KEY` or `file /run/key`.
    origin: String,
}

impl Secret {
    pub fn new(value: String, origin: String) -> Self {
        Secret { value, origin }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(from {})", self.origin)
    }
}
