//! Credentials never reach logs, reports or error messages: every `${VAR}` value, every Xtream
//! username and password and every password written in a URL is registered here, and all text
//! meant for humans or machines passes through [`mask`] on its way out.

use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shortest value that is masked. Masking a one- or two-letter value would garble every message
/// while protecting nothing (such a secret is guessable anyway).
const MIN_SECRET_LEN: usize = 3;

/// Remember a value that must never be shown.
pub fn register(value: &str) {
    if value.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Register the password (and user) of a URL's userinfo, if it has one.
pub fn register_url(url: &str) {
    if let Some((user, pass)) = userinfo(url) {
        register(user);
        if let Some(pass) = pass {
            register(pass);
        }
    }
}

fn userinfo(url: &str) -> Option<(&str, Option<&str>)> {
    let after_scheme = url.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let (info, _) = authority.rsplit_once('@')?;
    Some(match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    })
}

/// Whether `text` shows a registered secret or a URL password.
pub fn contains_secret(text: &str) -> bool {
    if userinfo(text).is_some_and(|(_, pass)| pass.is_some()) {
        return true;
    }
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    secrets.iter().any(|s| text.contains(s.as_str()))
}

/// Replace every registered secret (and any URL userinfo) in `text` with `***`.
pub fn mask(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    mask_userinfo(&out)
}

fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_values_and_userinfo() {
        register("hunter2-secret");
        let masked = mask("GET http://me:pw@host:8080/live/x/hunter2-secret/1.ts failed");
        assert_eq!(masked, "GET http://***@host:8080/live/x/***/1.ts failed");
    }
}
