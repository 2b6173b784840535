//! Who is using the UI: a session made by signing in with a bearer token, kept in the server's
//! memory and named by an HttpOnly, SameSite=Strict cookie, with a token against cross-site
//! requests for every form that changes something.
//!
//! The cookie holds a random session id, never the token; the token stays in memory, so a
//! request is checked against the auth file's scopes as the API checks a bearer token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use parking_lot::Mutex;

use crate::serve::auth::{Scope, Tokens};

/// The cookie's name.
pub(crate) const COOKIE: &str = "promptreg_session";

/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(12 * 3600);

/// How many sessions are kept at once (the oldest goes first).
const MAX_SESSIONS: usize = 10_000;

/// A signed-in person.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token's name in the auth file: the author of what they commit.
    pub name: String,
    token: String,
    /// The value every form that changes something carries.
    pub csrf: String,
    used: Instant,
}

impl Session {
    /// Whether the token may do `scope`.
    pub(crate) fn may(&self, tokens: &Tokens, scope: Scope) -> bool {
        tokens
            .check(Some(&format!("Bearer {}", self.token)), scope)
            .is_ok()
    }
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
pub(crate) fn random_id() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// Signs in with `token`: the new session's id, or `None` when the token is unknown (or
    /// the system has no randomness to give).
    pub(crate) fn sign_in(&self, tokens: &Tokens, token: &str) -> Option<(String, Session)> {
        let name = tokens
            .check(Some(&format!("Bearer {token}")), Scope::Read)
            .ok()?
            .to_string();
        let id = random_id()?;
        let session = Session {
            name,
            token: token.to_string(),
            csrf: random_id()?,
            used: Instant::now(),
        };
        let mut all = self.by_id.lock();
        all.retain(|_, s| s.used.elapsed() < IDLE);
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The session a request's cookie names, if it is live.
    pub(crate) fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let mut all = self.by_id.lock();
        let session = all.get_mut(id)?;
        if session.used.elapsed() >= IDLE {
            all.remove(id);
            return None;
        }
        session.used = Instant::now();
        Some(session.clone())
    }

    /// Ends the session a request's cookie names.
    pub(crate) fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.by_id.lock().remove(id);
        }
    }
}

/// The value of cookie `name` in a request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over TLS (through a proxy that says so).
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` of a new session (`Secure` behind TLS).
pub(crate) fn set_cookie(headers: &HeaderMap, id: &str) -> HeaderValue {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        IDLE.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("promptreg_session=; Path=/"))
}

/// The `Set-Cookie` that removes the session's cookie.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("promptreg_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a request that changes something comes from this server's own pages: a browser
/// names the page's origin in `Origin` (and says `Sec-Fetch-Site`); one from another site is
/// refused whatever else it carries.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser's cross-site request: browsers send `Origin` with every POST.
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use crate::serve::ui::session::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).expect("a header value"));
        }
        map
    }

    #[test]
    fn a_cross_site_post_is_refused_and_a_same_origin_one_taken() {
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&own));
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:9999"),
        ]);
        assert!(!same_origin(&other));
        let opaque = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(!same_origin(&opaque));
        let fetch = headers(&[("host", "a"), ("sec-fetch-site", "cross-site")]);
        assert!(!same_origin(&fetch));
    }

    #[test]
    fn the_cookie_is_read_among_others_and_never_holds_the_token() {
        let h = headers(&[("cookie", "a=1; promptreg_session=abc; b=2")]);
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        let set = set_cookie(&headers(&[("x-forwarded-proto", "https")]), "abc");
        let set = set.to_str().expect("ascii");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.ends_with("; Secure"), "{set}");
        assert!(!set_cookie(&HeaderMap::new(), "abc")
            .to_str()
            .expect("ascii")
            .contains("Secure"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
