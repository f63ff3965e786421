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

/// Register the password (and user) of a URL's userinfo, if it has one, and the values of
/// query parameters named like credentials (`username`, `password`, `token`, `key`, ...):
/// providers repeat them in every stream URL of the playlist they serve.
pub fn register_url(url: &str) {
    if let Some((user, pass)) = userinfo(url) {
        register(user);
        if let Some(pass) = pass {
            register(pass);
        }
    }
    for value in credential_params(url) {
        register(&value);
        register(&percent_decode(&value, false));
    }
}

/// Query parameter names (lower case) whose values are credentials when the name contains one.
const CREDENTIAL_NAMES: [&str; 7] = ["user", "pass", "pwd", "token", "key", "secret", "auth"];

/// The raw values of credential-like query parameters of `url`.
pub fn credential_params(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, value)| {
            let name = name.to_ascii_lowercase();
            !value.is_empty() && CREDENTIAL_NAMES.iter().any(|c| name.contains(c))
        })
        .map(|(_, value)| value.to_string())
        .collect()
}

/// Whether `url` carries credentials: user info, or a credential-like query value.
pub fn url_has_credentials(url: &str) -> bool {
    userinfo(url).is_some() || !credential_params(url).is_empty()
}

/// `%XX` decoded, and `+` as a space when `plus_is_space` (form encoding, as Kodi's header
/// suffix uses it; a server's query value keeps `+`).
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(match bytes[i] {
            b'+' if plus_is_space => b' ',
            b => b,
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

        register_url("http://panel.example/get.php?username=alice77&password=s3cr%21t&type=m3u");
        assert_eq!(
            mask("http://panel.example/live/alice77/s3cr!t/5.ts"),
            "http://panel.example/live/***/***/5.ts"
        );
        assert!(url_has_credentials("http://h/x.m3u?token=abcdef"));
        assert!(!url_has_credentials("http://h/x.m3u?type=m3u_plus"));
    }
}
