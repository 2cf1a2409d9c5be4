//! Credentials that live outside the config file's secrets: Google access tokens minted from
//! a service-account key (a signed JWT exchanged at the key's token endpoint), and AWS keys
//! found the way AWS's own tools find them. A token is fetched and then refreshed before it
//! expires by one thread per key file, off the shards; shards only read the current token
//! ([`Token::get`]). The same key file named by several providers, or by every generation a
//! reload builds, shares one thread and one token.

pub mod aws;
mod exchange;
pub mod jwt;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::config::Token;

/// How long before expiry a token is replaced.
const REFRESH_EARLY: Duration = Duration::from_secs(300);
/// Waits between failed exchanges: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Token>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Arc<Token>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The token minted from the service-account key at `path`: read and checked now (a broken
/// file is a config error), fetched and kept fresh by a background thread from now on.
pub fn service_account(path: &Path) -> Result<Arc<Token>, String> {
    let json = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let sa = jwt::ServiceAccount::parse(&json).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reg = registry()
        .lock()
        .map_err(|_| "credentials registry poisoned")?;
    if let Some(t) = reg.get(path) {
        return Ok(t.clone());
    }
    let token = Arc::new(Token::default());
    let keep = token.clone();
    let shown = path.display().to_string();
    std::thread::Builder::new()
        .name("sg-credentials".into())
        .spawn(move || refresh_forever(&sa, &keep, &shown))
        .map_err(|e| format!("cannot start the credentials thread: {e}"))?;
    reg.insert(path.to_owned(), token.clone());
    Ok(token)
}

/// Fetches a token, sleeps until it is nearly stale, and again; failures are retried with
/// backoff while the current token (if any) stays in use, and are kept for error messages.
fn refresh_forever(sa: &jwt::ServiceAccount, token: &Token, shown: &str) {
    let mut wait = RETRY_FIRST;
    loop {
        let form = format!(
            "grant_type={}&assertion={}",
            exchange::form_value("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            exchange::form_value(&sa.assertion(unix_now())),
        );
        match exchange::post_form(&sa.token_uri, &form) {
            Ok(g) => {
                token.set(g.access_token.into());
                wait = RETRY_FIRST;
                let valid = Duration::from_secs(g.expires_in);
                let sleep = valid
                    .checked_sub(REFRESH_EARLY)
                    .unwrap_or(valid / 2)
                    .max(Duration::from_secs(1));
                log::debug!("{shown}: access token for {} renewed", sa.client_email);
                std::thread::sleep(sleep);
            }
            Err(e) => {
                log::warn!(
                    "{shown}: cannot get an access token for {}: {e}",
                    sa.client_email
                );
                token.fail(e);
                std::thread::sleep(wait);
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}
