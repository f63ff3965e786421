//! One probe of one stream URL: a GET that reads at most [`READ_LIMIT`] bytes and closes. The
//! content decides, not the URL: MPEG-TS by its sync bytes, an HLS playlist (`#EXTM3U`) is
//! followed to its first variant and the first bytes of its first media segment, an HTML or
//! text page is a failure. Every failure has a short reason of its own (`http 403`, `timeout`,
//! `connection refused`, `tls: ...`, `html page`, `hls segment: http 404`). Schemes other than
//! HTTP(S) are `unknown`: they are not probed.
//!
//! The channel's own request headers are sent: `#EXTVLCOPT:http-user-agent=` and
//! `http-referrer=`, and the `|User-Agent=...&Referer=...` suffix Kodi reads from the URL.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// Bytes read from a stream (and from each playlist or segment of an HLS chain).
pub const READ_LIMIT: usize = 64 * 1024;
/// Redirects followed per request.
pub const MAX_REDIRECTS: u32 = 3;
/// Playlists followed before the segment (a master, then a media playlist, then one more).
const MAX_PLAYLISTS: usize = 3;

/// The verdict of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The stream sent media.
    Ok,
    /// It did not (see the reason).
    Fail,
    /// Not probed (another scheme).
    Skipped,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    /// `mpeg-ts`, `hls`, `media (video/mp4)`, or why it failed.
    pub reason: String,
    /// Status of the first request, when one was answered.
    pub http_status: Option<u16>,
    pub latency_ms: u64,
}

/// A stream to probe: its URL as written in the playlist and the headers the channel asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The URL without a Kodi `|header` suffix.
    pub url: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
}

impl Target {
    /// Read the URL (with its Kodi suffix) and the channel's `#EXTVLCOPT` lines. An
    /// `#EXTVLCOPT` wins over the suffix, as in VLC.
    pub fn from_channel(url: &str, directives: &[String]) -> Target {
        let (base, suffix) = match url.split_once('|') {
            Some((b, s)) => (b, Some(s)),
            None => (url, None),
        };
        let mut target = Target {
            url: base.trim().to_string(),
            ..Target::default()
        };
        for pair in suffix.into_iter().flat_map(|s| s.split('&')) {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let value = crate::secrets::percent_decode(value.trim(), true);
            match name.trim().to_ascii_lowercase().as_str() {
                "user-agent" => target.user_agent = Some(value),
                "referer" | "referrer" => target.referrer = Some(value),
                _ => {}
            }
        }
        for d in directives {
            let Some(opt) = d.strip_prefix("#EXTVLCOPT:") else {
                continue;
            };
            let Some((name, value)) = opt.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "http-user-agent" => target.user_agent = Some(value),
                "http-referrer" | "http-referer" => target.referrer = Some(value),
                _ => {}
            }
        }
        target
    }

    /// `host:port` (lowercase) of an HTTP(S) URL; `None` for other schemes.
    pub fn host(&self) -> Option<String> {
        let lower = self.url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (!host.is_empty()).then(|| host.to_string())
    }

    /// Stored form of the headers: one `Name: value` per line.
    pub fn headers_text(&self) -> String {
        let mut out = String::new();
        if let Some(ua) = &self.user_agent {
            out.push_str(&format!("User-Agent: {ua}\n"));
        }
        if let Some(r) = &self.referrer {
            out.push_str(&format!("Referer: {r}\n"));
        }
        out
    }
}

/// The probing HTTP client, shared by the probe workers.
#[derive(Debug, Clone)]
pub struct Prober {
    agent: ureq::Agent,
    user_agent: String,
    timeout: Duration,
}

/// What a body turned out to be.
enum Content {
    Ts,
    Hls(String),
    Media(String),
    Bad(String),
}

impl Prober {
    /// `user_agent` is sent when the channel names none (`settings.fetch.user_agent`).
    pub fn new(user_agent: &str, timeout: Duration) -> Prober {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .max_redirects_will_error(true)
            // No idle connections kept: a provider counts them against the account's limit.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build();
        Prober {
            agent: config.new_agent(),
            user_agent: user_agent.to_string(),
            timeout,
        }
    }

    /// The configured time one probe may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Probe one stream, within `limit` (the probe's timeout or what is left of the budget,
    /// whichever is shorter) for the whole chain.
    pub fn probe(&self, target: &Target, limit: Duration) -> Finding {
        let started = Instant::now();
        if target.host().is_none() {
            let scheme = target.url.split("://").next().unwrap_or("").to_string();
            return Finding {
                verdict: Verdict::Skipped,
                reason: format!("not probed: {scheme} is not http(s)"),
                http_status: None,
                latency_ms: 0,
            };
        }
        let deadline = started + self.timeout.min(limit);
        let mut first_status = None;
        let result = self.follow(target, deadline, &mut first_status);
        let (verdict, reason) = match result {
            Ok(kind) => (Verdict::Ok, kind),
            Err(reason) => (Verdict::Fail, reason),
        };
        Finding {
            verdict,
            reason,
            http_status: first_status,
            latency_ms: started.elapsed().as_millis() as u64,
        }
    }

    fn follow(
        &self,
        target: &Target,
        deadline: Instant,
        first_status: &mut Option<u16>,
    ) -> Result<String, String> {
        let mut url = target.url.clone();
        let mut hls = false;
        // What the request in hand is, for the reason: the stream itself, an HLS variant
        // playlist or an HLS segment.
        let mut stage = "";
        for depth in 0..=MAX_PLAYLISTS {
            let (status, final_url, content_type, body, complete) = self
                .get(&url, target, deadline)
                .map_err(|why| format!("{stage}{why}"))?;
            first_status.get_or_insert(status);
            if !(200..300).contains(&status) {
                return Err(format!("{stage}http {status}"));
            }
            match sniff(&content_type, &body) {
                Content::Hls(playlist) if depth < MAX_PLAYLISTS => {
                    let next = first_uri(&playlist)
                        .ok_or_else(|| "hls: playlist lists no variant or segment".to_string())?;
                    url = resolve(&final_url, &next);
                    hls = true;
                    stage = if playlist.contains("#EXT-X-STREAM-INF") {
                        "hls variant: "
                    } else {
                        "hls segment: "
                    };
                    continue;
                }
                Content::Hls(_) => return Err("hls: playlists nest too deep".into()),
                Content::Bad(why) => return Err(format!("{stage}{why}")),
                // A live stream never ends: a short read means it stalled before the limit.
                _ if !complete && !hls => {
                    return Err(format!("timeout: {} bytes before the limit", body.len()));
                }
                Content::Ts => return Ok(if hls { "hls (mpeg-ts)" } else { "mpeg-ts" }.into()),
                Content::Media(kind) => {
                    return Ok(if hls {
                        format!("hls ({kind})")
                    } else {
                        format!("media ({kind})")
                    });
                }
            }
        }
        Err("hls: playlists nest too deep".into())
    }

    /// GET `url`, reading at most [`READ_LIMIT`] bytes. `complete` is false when the time ran
    /// out after some bytes arrived (a trickle).
    #[allow(clippy::type_complexity)]
    fn get(
        &self,
        url: &str,
        target: &Target,
        deadline: Instant,
    ) -> Result<(u16, String, String, Vec<u8>, bool), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timeout".into());
        }
        let mut request = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(left))
            .user_agent(target.user_agent.as_deref().unwrap_or(&self.user_agent))
            .build();
        if let Some(r) = &target.referrer {
            request = request.header("Referer", r.as_str());
        }
        let response = request.call().map_err(|e| {
            let why = reason(&e);
            // Over https, a connection that closes or sends garbage before any response is
            // the TLS handshake failing (a plain-HTTP port, a broken certificate chain).
            let handshake = matches!(&e, ureq::Error::Io(io) if matches!(
                io.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
            ));
            if handshake
                && url
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            {
                format!("tls: handshake failed ({why})")
            } else {
                why
            }
        })?;
        let status = response.status().as_u16();
        let final_url = ureq::ResponseExt::get_uri(&response).to_string();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !(200..300).contains(&status) {
            return Ok((status, final_url, content_type, Vec::new(), true));
        }
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let mut body = vec![0u8; READ_LIMIT];
        let mut got = 0;
        while got < READ_LIMIT {
            match reader.read(&mut body[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if got > 0 && is_timeout(&e) => {
                    body.truncate(got);
                    return Ok((status, final_url, content_type, body, false));
                }
                Err(e) if is_timeout(&e) => return Err("timeout".into()),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        body.truncate(got);
        Ok((status, final_url, content_type, body, true))
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) || e.to_string().contains("timeout")
}

/// The reason a request failed, short and without the URL.
fn reason(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Timeout(_) => "timeout".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection refused".into(),
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".into(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout".into(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => {
                "connection closed".into()
            }
            _ => format!("io: {e}"),
        },
        ureq::Error::TooManyRedirects => format!("more than {MAX_REDIRECTS} redirects"),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            format!("tls: {err}")
        }
        other => format!("error: {other}"),
    }
}

/// Decide what a body is by its bytes (and, for pages, its content type).
fn sniff(content_type: &str, body: &[u8]) -> Content {
    if body.is_empty() {
        return Content::Bad("empty body".into());
    }
    if is_ts(body) {
        return Content::Ts;
    }
    let start = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = &start[start
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(start.len())..];
    if start.starts_with(b"#EXTM3U") {
        return Content::Hls(String::from_utf8_lossy(start).into_owned());
    }
    let head = String::from_utf8_lossy(&start[..start.len().min(64)]).to_ascii_lowercase();
    if head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || content_type.contains("html")
    {
        return Content::Bad("html page".into());
    }
    if content_type.starts_with("text/") || content_type.contains("json") || head.starts_with('{') {
        return Content::Bad(format!(
            "text page ({}), not a stream",
            if content_type.is_empty() {
                "no content type"
            } else {
                content_type
            }
        ));
    }
    let kind = if content_type.is_empty() {
        "unknown type".to_string()
    } else {
        content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    Content::Media(kind)
}

/// MPEG-TS: the sync byte 0x47 every 188 bytes, three packets in a row, from any of the first
/// 188 offsets (a stream may start mid-packet).
pub fn is_ts(body: &[u8]) -> bool {
    const P: usize = 188;
    (0..P.min(body.len())).any(|o| {
        body.len() > o + 2 * P && body[o] == 0x47 && body[o + P] == 0x47 && body[o + 2 * P] == 0x47
    })
}

/// The first URI line of an HLS playlist: the first variant of a master playlist, else the
/// first segment of a media playlist.
fn first_uri(playlist: &str) -> Option<String> {
    let lines = playlist.lines().map(str::trim);
    let master = playlist.contains("#EXT-X-STREAM-INF");
    let mut after_tag = !master;
    for line in lines {
        if line.starts_with("#EXT-X-STREAM-INF") {
            after_tag = true;
        } else if !line.is_empty() && !line.starts_with('#') && after_tag {
            return Some(line.to_string());
        }
    }
    None
}

/// Resolve a playlist entry against the playlist's own (final) URL.
fn resolve(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| i + scheme_end);
    if let Some(rest) = reference.strip_prefix("//") {
        return format!("{}{rest}", &base[..scheme_end]);
    }
    if reference.starts_with('/') {
        return format!("{}{reference}", &base[..path_start]);
    }
    let no_query = base.split(['?', '#']).next().unwrap_or(base);
    let dir_end = no_query.rfind('/').filter(|&i| i >= path_start);
    match dir_end {
        Some(i) => format!("{}{reference}", &no_query[..=i]),
        None => format!("{no_query}/{reference}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_from_suffix_and_vlcopt() {
        let t = Target::from_channel(
            "http://h.example:8080/a.ts|User-Agent=Kodi%2F20&Referer=http://r.example/",
            &[],
        );
        assert_eq!(t.url, "http://h.example:8080/a.ts");
        assert_eq!(t.user_agent.as_deref(), Some("Kodi/20"));
        assert_eq!(t.referrer.as_deref(), Some("http://r.example/"));
        assert_eq!(t.host().as_deref(), Some("h.example:8080"));
        let t = Target::from_channel(
            "http://h/a|User-Agent=x",
            &["#EXTVLCOPT:http-user-agent=VLC/3".into()],
        );
        assert_eq!(t.user_agent.as_deref(), Some("VLC/3"));
        assert_eq!(Target::from_channel("rtmp://h/live", &[]).host(), None);
    }

    #[test]
    fn sniffing_and_resolving() {
        let mut ts = vec![0u8; 188 * 3];
        for i in 0..3 {
            ts[i * 188] = 0x47;
        }
        assert!(is_ts(&ts));
        assert!(!is_ts(&ts[..300]));
        assert!(matches!(sniff("", b"<!DOCTYPE html><p>"), Content::Bad(_)));
        assert!(matches!(sniff("", b"\n#EXTM3U\n"), Content::Hls(_)));
        assert_eq!(
            first_uri("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n").as_deref(),
            Some("low/index.m3u8")
        );
        assert_eq!(
            first_uri("#EXTM3U\n#EXTINF:6,\nseg1.ts\n").as_deref(),
            Some("seg1.ts")
        );
        assert_eq!(
            resolve("http://h/a/b.m3u8?t=1", "c/d.ts"),
            "http://h/a/c/d.ts"
        );
        assert_eq!(resolve("http://h/a/b.m3u8", "/x.ts"), "http://h/x.ts");
        assert_eq!(resolve("https://h/a", "//g/x.ts"), "https://g/x.ts");
    }
}
