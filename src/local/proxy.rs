//! The local router's HTTP side, behaving as the ALB does in front of its targets: rules in
//! priority order (router.rs), `X-Forwarded-For` appended and `-Proto`/`-Port` set (never the
//! client's), header names an ALB with `drop_invalid_header_fields` drops dropped, hop-by-hop
//! headers and those named in `Connection` removed both ways, the ALB's request-size limits
//! (400), its idle timeout on both sides (a client that sends nothing is cut off, an upstream
//! that answers nothing is a 504), a refused or cut-short upstream a 502, and redirects passed
//! on, not followed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::router::route;
use crate::config::{RoutingRule, ServiceName};

/// The ALB's limits on a request's head (AWS: "HTTP 400: … exceeds 16 K per request line,
/// 16 K per single header, or 64 K for the entire request headers").
const MAX_REQUEST_LINE: usize = 16 * 1024;
const MAX_HEADER: usize = 16 * 1024;
const MAX_HEADERS: usize = 64 * 1024;
/// Bodies the router buffers on their way to a container.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct Stack {
    /// The service's router, called in-process; None when it runs as a container.
    pub service: Option<Router>,
    /// The service container's published address, when it runs as one.
    pub learntrac: Option<String>,
    pub rules: Vec<RoutingRule>,
    /// Trac's address (`http://127.0.0.1:PORT`): its container's, or the embedded `tracd`'s.
    pub trac: Option<String>,
    /// Why Trac is not running, when it is not.
    pub trac_absent: Option<String>,
    pub http: reqwest::Client,
    /// The port clients reach the router on (`X-Forwarded-Port`).
    pub port: u16,
    /// `network.idle_timeout`.
    pub idle: Duration,
}

impl Stack {
    /// The client for upstream calls: redirects passed on (following them would turn Trac's
    /// 303 after a form POST into a GET without the client's cookies), and no read waiting
    /// longer than the idle timeout.
    pub fn http_client(idle: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .read_timeout(idle)
            .build()
    }
}

/// The client's address, put on each request by [`serve`].
#[derive(Clone, Copy)]
struct ClientAddr(SocketAddr);

pub fn app(stack: Arc<Stack>) -> Router {
    Router::new().fallback(proxy).with_state(stack)
}

/// Serves `app` over HTTP/1.1 with the idle timeout applied to clients: a connection that
/// does not deliver a request head within it is closed (as the ALB closes idle ones).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    idle: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    // Each connection watches `stopping`; each holds a clone of `open`, so when every clone
    // is gone, every connection has finished. (hyper-util's GracefulShutdown cannot watch a
    // connection that may upgrade to a WebSocket.)
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(a) => a,
                    Err(_) => {
                        // Out of descriptors and the like: let some connections finish.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ClientAddr(addr));
                    app.clone().oneshot(req.map(Body::new))
                });
                // with_upgrades: a WebSocket (101) takes the connection over, as at the ALB.
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(idle)
                    .max_buf_size(MAX_HEADERS + MAX_REQUEST_LINE + 1024)
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                let mut stopping = stopping.clone();
                let open = open.clone();
                tokio::spawn(async move {
                    let _open = open;
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => return,
                        _ = stopping.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
                    }
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(open);
    let _ = tokio::time::timeout(Duration::from_secs(10), all_closed.recv()).await;
    Ok(())
}

async fn proxy(State(stack): State<Arc<Stack>>, mut req: Request<Body>) -> Response {
    if let Some(why) = too_large(&req) {
        return alb_error(StatusCode::BAD_REQUEST, why);
    }
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    prepare_request(req.headers_mut(), client, stack.port);
    match route(&stack.rules, req.uri().path()) {
        ServiceName::Learntrac => match (&stack.service, &stack.learntrac) {
            (Some(service), _) => match service.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            },
            (None, Some(_)) if is_websocket(req.headers()) => (
                StatusCode::NOT_IMPLEMENTED,
                "the local router carries WebSockets to the in-process service only; run `local up` without --service container\n",
            )
                .into_response(),
            (None, Some(base)) => forward(&stack, base, req).await,
            (None, None) => StatusCode::BAD_GATEWAY.into_response(),
        },
        ServiceName::Trac => match &stack.trac {
            Some(base) => forward(&stack, base, req).await,
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Trac is not running here: {}\n",
                    stack
                        .trac_absent
                        .as_deref()
                        .unwrap_or("no Trac was started")
                ),
            )
                .into_response(),
        },
    }
}

/// Which of the ALB's head limits the request breaks, if any.
fn too_large(req: &Request<Body>) -> Option<&'static str> {
    let line = req.method().as_str().len() + req.uri().to_string().len() + " HTTP/1.1".len() + 1;
    if line > MAX_REQUEST_LINE {
        return Some("request line over 16 KiB");
    }
    let mut total = 0;
    for (k, v) in req.headers() {
        let one = k.as_str().len() + 2 + v.len();
        if one > MAX_HEADER {
            return Some("a header over 16 KiB");
        }
        total += one + 2;
    }
    (total > MAX_HEADERS).then_some("headers over 64 KiB")
}

/// The ALB's own error page, as it answers when it refuses a request itself.
fn alb_error(status: StatusCode, why: &str) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut resp = (
        status,
        format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
        ),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/html"));
    h.insert("server", HeaderValue::from_static("awselb/2.0"));
    if let Ok(v) = HeaderValue::from_str(why) {
        h.insert("x-learntrac-router", v);
    }
    resp
}

/// What the ALB does to a request's headers before a target sees them.
fn prepare_request(headers: &mut HeaderMap, client: Option<SocketAddr>, port: u16) {
    // A WebSocket handshake keeps its Upgrade and Connection: the ALB passes WebSockets on.
    let websocket = is_websocket(headers);
    strip_hop_by_hop(headers);
    if websocket {
        headers.insert("connection", HeaderValue::from_static("upgrade"));
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
    }
    // drop_invalid_header_fields: names of letters, digits and hyphens only.
    let invalid: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            !k.as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .cloned()
        .collect();
    for k in invalid {
        headers.remove(k);
    }
    if let Some(addr) = client {
        let ip = addr.ip().to_string();
        let chain = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .chain(std::iter::once(ip.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(v) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", v);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.insert("x-forwarded-port", HeaderValue::from(port));
}

/// Whether a request asks to become a WebSocket (RFC 6455 §4.1: `Upgrade: websocket`
/// and `Connection` naming `upgrade`).
fn is_websocket(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    upgrade && connection
}

/// Removes the headers that describe one connection: the fixed hop-by-hop set and every
/// header the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
    ] {
        headers.remove(name);
    }
}

/// Passes a request on to a container, as the ALB passes it to its target group.
async fn forward(stack: &Stack, base: &str, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = match tokio::time::timeout(stack.idle, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Err(_) => return alb_error(StatusCode::REQUEST_TIMEOUT, "request body idle"),
    };
    // The Host header passes through, as the ALB passes it: Trac builds its links and
    // redirects from it.
    let mut upstream = stack
        .http
        .request(parts.method, format!("{base}{path}"))
        .headers(parts.headers)
        .body(body);
    upstream = upstream.timeout(stack.idle);
    match upstream.send().await {
        Ok(r) => {
            let status = r.status();
            let mut headers = r.headers().clone();
            strip_hop_by_hop(&mut headers);
            // A body cut short is the upstream failing, never a 200 with less in it.
            match r.bytes().await {
                Ok(bytes) => {
                    let mut resp = Response::new(Body::from(bytes));
                    *resp.status_mut() = status;
                    *resp.headers_mut() = headers;
                    resp
                }
                Err(e) if e.is_timeout() => alb_error(StatusCode::GATEWAY_TIMEOUT, "upstream idle"),
                Err(e) => (
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream's answer was cut short: {e}\n"),
                )
                    .into_response(),
            }
        }
        Err(e) if e.is_timeout() => alb_error(StatusCode::GATEWAY_TIMEOUT, "upstream idle"),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("{base} did not answer: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_the_alb_passes_them() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x_under", HeaderValue::from_static("dropped"));
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("cookie", HeaderValue::from_static("trac_auth=1"));
        let addr: SocketAddr = "127.0.0.9:5555".parse().expect("addr");
        prepare_request(&mut h, Some(addr), 8080);
        assert!(h.get("x-secret").is_none(), "named in Connection");
        assert!(h.get("connection").is_none() && h.get("keep-alive").is_none());
        assert!(h.get("x_under").is_none(), "invalid header name dropped");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.9", "appended");
        assert_eq!(
            h["x-forwarded-proto"], "http",
            "the client's is not trusted"
        );
        assert_eq!(h["x-forwarded-port"], "8080");
        assert_eq!(h["cookie"], "trac_auth=1");
    }
}
