//! A small, real HTTP/1.1 server for tests: it listens on 127.0.0.1 on a port the system picks,
//! serves one request per connection on a thread of its own, and plays scripted faults per path
//! (errors N times then success, 429 with Retry-After, cut-off bodies, slow drips, redirect
//! loops, 304 on a matching ETag, requests held until the test opens a gate). It is plain `std` (plus `flate2`) so that the library's unit
//! tests (`#[path]`-included from `src/fetch`) and the integration tests (`mod support;`) share
//! it without a test-only dependency.
//!
//! Every connection is closed after its response (`Connection: close`): that keeps the server
//! simple and makes a truncated body look exactly like a provider that dropped the connection.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A 200 response with its body and metadata.
#[derive(Clone, Debug, Default)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// Send the body gzip-compressed with `Content-Encoding: gzip`.
    pub gzip_encoding: bool,
    /// Send this ETag; a request whose `If-None-Match` equals it gets `304`.
    pub etag: Option<String>,
    /// Send this Last-Modified; a request whose `If-Modified-Since` equals it gets `304`.
    pub last_modified: Option<String>,
}

impl Body {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Body {
        Body {
            bytes: bytes.into(),
            content_type: "application/octet-stream".into(),
            ..Body::default()
        }
    }

    pub fn json(text: &str) -> Body {
        Body {
            content_type: "application/json".into(),
            ..Body::new(text)
        }
    }

    pub fn etag(mut self, etag: &str) -> Body {
        self.etag = Some(etag.into());
        self
    }

    pub fn last_modified(mut self, value: &str) -> Body {
        self.last_modified = Some(value.into());
        self
    }

    pub fn gzip_encoded(mut self) -> Body {
        self.gzip_encoding = true;
        self
    }
}

/// What the server does for one request to a path.
#[derive(Clone, Debug)]
pub enum Route {
    /// `200` with a body (or `304` when the request's validators match it).
    Ok(Body),
    /// A bare status with a short text body.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: secs`.
    RetryAfter(u64),
    /// Announce `declared` bytes in Content-Length, send `body`, then close.
    Truncated { declared: usize, body: Vec<u8> },
    /// Send the headers, then the body one byte every `interval`.
    Drip { body: Vec<u8>, interval: Duration },
    /// Accept the request and send nothing for `delay` (headers never arrive in time).
    Stall(Duration),
    /// `302 Found` to another path of this server.
    Redirect(String),
    /// The n-th request gets the n-th route; the last one repeats.
    Sequence(Vec<Route>),
    /// `403` unless the request has this header with this value, then the route.
    NeedsHeader {
        name: String,
        value: String,
        then: Box<Route>,
    },
    /// Wait, then play the route. Requests waiting here are counted: two counted at once
    /// were certainly two open connections (see [`TestServer::max_concurrent`]).
    Delay(Duration, Box<Route>),
    /// Wait until the test opens the gate (at most a minute), then play the route: the client
    /// is held mid-request for exactly as long as the test needs, with no timing guess.
    Hold(Gate, Box<Route>),
}

/// A gate a [`Route::Hold`] waits at until [`Gate::open`].
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Let every request waiting here (and every later one) through.
    pub fn open(&self) {
        *self.0.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.1.notify_all();
    }

    fn wait(&self) {
        let guard = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .0
            .1
            .wait_timeout_while(guard, Duration::from_secs(60), |open| !*open);
    }
}

impl Route {
    /// `status` for the first `times` requests, then `then`.
    pub fn fail_then(status: u16, times: usize, then: Route) -> Route {
        let mut seq = vec![Route::Status(status); times];
        seq.push(then);
        Route::Sequence(seq)
    }

    /// Non-HTTP-looking bytes with a 200: what a captive portal or a broken panel sends.
    pub fn garbage() -> Route {
        Route::Ok(Body {
            bytes: b"<html><body>\x00\x01\xffnot a playlist</body></html>".to_vec(),
            content_type: "text/html".into(),
            ..Body::default()
        })
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    requests: Vec<Request>,
    /// Connections open now, and the most ever open at once.
    open: usize,
    max_open: usize,
}

/// The running server. Dropping it stops accepting connections.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                thread::spawn(move || {
                    // A client that gave up mid-response is not the test's concern.
                    let _ = serve(stream, &st);
                });
            }
        });
        TestServer { addr, state, stop }
    }

    /// Script a path. `target` is the path with or without its query: a request is matched by
    /// its whole target first, then by its path alone.
    pub fn route(&self, target: &str, route: Route) -> &TestServer {
        self.lock().routes.insert(target.to_string(), route);
        self
    }

    /// `http://127.0.0.1:PORT{target}`.
    pub fn url(&self, target: &str) -> String {
        format!("http://{}{}", self.addr, target)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests reached this path (query ignored).
    pub fn hits(&self, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.target.split('?').next() == Some(path))
            .count()
    }

    /// The most requests that ever waited in a [`Route::Delay`] at once: each holds an open
    /// connection whose client is waiting for its answer (this server is one host). The
    /// count never includes a connection the client already finished with.
    pub fn max_concurrent(&self) -> usize {
        self.lock().max_open
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let request = Request {
        method,
        target: target.clone(),
        headers,
    };
    let route = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let path = target.split('?').next().unwrap_or("").to_string();
        let seen = st.requests.iter().filter(|r| r.target == target).count();
        st.requests.push(request.clone());
        let route = st
            .routes
            .get(&target)
            .or_else(|| st.routes.get(&path))
            .cloned();
        route.map(|r| pick(r, seen))
    };
    let mut out = stream;
    match route {
        None => respond(&mut out, 404, &[], b"no such path\n"),
        Some(route) => play(&mut out, route, &request, state),
    }
}

/// Resolve a `Sequence` for the n-th request of a target.
fn pick(route: Route, n: usize) -> Route {
    match route {
        Route::Sequence(seq) if !seq.is_empty() => {
            let r = seq[n.min(seq.len() - 1)].clone();
            pick(r, n)
        }
        other => other,
    }
}

fn play(
    out: &mut TcpStream,
    route: Route,
    request: &Request,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    match route {
        Route::Ok(body) => {
            let etag_hit =
                body.etag.is_some() && request.header("if-none-match") == body.etag.as_deref();
            let date_hit = body.last_modified.is_some()
                && request.header("if-modified-since") == body.last_modified.as_deref();
            let mut headers = Vec::new();
            if let Some(e) = &body.etag {
                headers.push(("ETag".to_string(), e.clone()));
            }
            if let Some(l) = &body.last_modified {
                headers.push(("Last-Modified".to_string(), l.clone()));
            }
            if etag_hit || date_hit {
                return respond(out, 304, &headers, b"");
            }
            headers.push(("Content-Type".to_string(), body.content_type.clone()));
            let bytes = if body.gzip_encoding {
                headers.push(("Content-Encoding".to_string(), "gzip".to_string()));
                gzip(&body.bytes)
            } else {
                body.bytes
            };
            respond(out, 200, &headers, &bytes)
        }
        Route::Status(code) => respond(out, code, &[], format!("status {code}\n").as_bytes()),
        Route::RetryAfter(secs) => respond(
            out,
            429,
            &[("Retry-After".to_string(), secs.to_string())],
            b"slow down\n",
        ),
        Route::Truncated { declared, body } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            )?;
            out.write_all(&body)?;
            out.flush()?;
            out.shutdown(std::net::Shutdown::Both)
        }
        Route::Drip { body, interval } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            for b in body {
                out.write_all(&[b])?;
                out.flush()?;
                thread::sleep(interval);
            }
            Ok(())
        }
        Route::Stall(delay) => {
            thread::sleep(delay);
            Ok(())
        }
        Route::Redirect(to) => respond(out, 302, &[("Location".to_string(), to)], b""),
        Route::Sequence(_) => respond(out, 500, &[], b"empty sequence\n"),
        Route::NeedsHeader { name, value, then } => {
            if request.header(&name) == Some(value.as_str()) {
                play(out, *then, request, state)
            } else {
                respond(out, 403, &[], b"forbidden\n")
            }
        }
        Route::Delay(delay, then) => {
            let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
            {
                let mut s = lock();
                s.open += 1;
                s.max_open = s.max_open.max(s.open);
            }
            thread::sleep(delay);
            // Uncounted before the answer starts: the client cannot be done before that.
            lock().open -= 1;
            play(out, *then, request, state)
        }
        Route::Hold(gate, then) => {
            gate.wait();
            play(out, *then, request, state)
        }
    }
}

fn respond(
    out: &mut TcpStream,
    code: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if code != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()?;
    // Drain what the client may still send so that closing does not reset the connection
    // before it read the response.
    let _ = out.shutdown(std::net::Shutdown::Write);
    let _ = out.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = out.read(&mut [0u8; 512]);
    Ok(())
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Gzip bytes (for `Content-Encoding: gzip` and for `.gz` bodies and bombs).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}
