//! The local router as an ALB behaves in front of a target: forwarded headers, hop-by-hop
//! headers, head-size limits, idle timeouts on both sides, and a target that fails. The
//! router is the real one (`local::proxy`), on a real socket; the target is a small raw
//! HTTP/1.1 server here, because the faults it must produce (a stalled answer, a body cut
//! short, hop-by-hop headers of its own) are what no real Trac does on demand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use learntrac::config::{RoutingRule, ServiceName};
use learntrac::local::proxy::{self, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IDLE: Duration = Duration::from_secs(1);

/// The target: echoes the request head it got, or misbehaves on request.
async fn target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut s).await;
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let reply: Vec<u8> = match path.as_str() {
                    "/stall" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    "/cut" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..".to_vec(),
                    "/hop" => b"HTTP/1.1 200 OK\r\nConnection: close, X-Upstream-Secret\r\nX-Upstream-Secret: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                    "/see-other" => b"HTTP/1.1 303 See Other\r\nLocation: /ticket/1\r\nContent-Length: 0\r\n\r\n".to_vec(),
                    _ => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{head}",
                        head.len()
                    )
                    .into_bytes(),
                };
                let _ = s.write_all(&reply).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A router whose every path goes to `trac_port` (0: nothing listens there).
async fn router(trac_port: Option<u16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stack = Arc::new(Stack {
        service: None,
        learntrac: None,
        rules: vec![RoutingRule {
            priority: 90,
            service: ServiceName::Learntrac,
            paths: vec!["/api/LearnTrac/*".into()],
        }],
        trac: Some(format!("http://127.0.0.1:{}", trac_port.unwrap_or(1))),
        trac_absent: None,
        http: Stack::http_client(IDLE).expect("client"),
        port,
        idle: IDLE,
    });
    tokio::spawn(proxy::serve(
        listener,
        proxy::app(stack),
        IDLE,
        std::future::pending(),
    ));
    port
}

/// One raw request; the whole answer (the router closes or the read times out).
async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request).await.expect("send");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if let Some(end) = find(&out, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok());
                        if len.is_some_and(|l| out.len() >= end + 4 + l) {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn status(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_reach_the_target_as_through_an_alb() {
    let port = router(Some(target().await)).await;
    let resp = raw(
        port,
        b"GET /wiki?x=1 HTTP/1.1\r\nHost: school.example\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=9\r\nX_Under: dropped\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\nCookie: trac_auth=abc\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), 200, "{resp}");
    let seen = resp.to_ascii_lowercase();
    assert!(seen.contains("get /wiki?x=1 http/1.1"), "{resp}");
    assert!(
        seen.contains("host: school.example"),
        "Host passes through: {resp}"
    );
    assert!(
        seen.contains("x-forwarded-for: 203.0.113.7, 127.0.0.1"),
        "the client's address appended: {resp}"
    );
    assert!(seen.contains("x-forwarded-proto: http\r"), "{resp}");
    assert!(
        seen.contains(&format!("x-forwarded-port: {port}\r")),
        "{resp}"
    );
    assert!(
        !seen.contains("x-hop"),
        "a header named in Connection: {resp}"
    );
    assert!(
        !seen.contains("timeout=9"),
        "Keep-Alive is the client's: {resp}"
    );
    assert!(
        !seen.contains("x_under"),
        "invalid header names dropped: {resp}"
    );
    assert!(seen.contains("cookie: trac_auth=abc"), "{resp}");

    // The target's own hop-by-hop headers stop at the router too.
    let resp = raw(port, b"GET /hop HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(status(&resp), 200, "{resp}");
    assert!(
        !resp.to_ascii_lowercase().contains("x-upstream-secret"),
        "{resp}"
    );
    assert!(!resp.contains("timeout=5"), "{resp}");
    // Redirects are the client's to follow.
    let resp = raw(
        port,
        b"POST /see-other HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(status(&resp), 303, "{resp}");
    assert!(
        resp.contains("Location: /ticket/1") || resp.contains("location: /ticket/1"),
        "{resp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heads_over_the_albs_limits_are_a_400() {
    let port = router(Some(target().await)).await;
    let long_path = format!("/{}", "a".repeat(17 * 1024));
    let resp = raw(
        port,
        format!("GET {long_path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(
        status(&resp),
        400,
        "request line: {}",
        &resp[..resp.len().min(200)]
    );
    assert!(resp.contains("awselb/2.0"), "the ALB's page");
    let big = "b".repeat(17 * 1024);
    let resp = raw(
        port,
        format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&resp), 400, "one header");
    let many: String = (0..9)
        .map(|i| format!("X-H{i}: {}\r\n", "c".repeat(8000)))
        .collect();
    let resp = raw(
        port,
        format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&resp), 400, "all headers");
    // Just under the limits: passed on.
    let fine = format!("/{}", "a".repeat(15 * 1024));
    let resp = raw(
        port,
        format!("GET {fine} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&resp), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_target_is_a_502_or_504_never_a_short_200() {
    let port = router(Some(target().await)).await;
    let started = Instant::now();
    let resp = raw(port, b"GET /stall HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(status(&resp), 504, "{resp}");
    assert!(
        started.elapsed() < IDLE * 4,
        "the idle timeout, not the target's 30 s: {:?}",
        started.elapsed()
    );
    let resp = raw(port, b"GET /cut HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(status(&resp), 502, "{resp}");
    let nothing = router(None).await;
    let resp = raw(nothing, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(status(&resp), 502, "{resp}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_or_slow_client_is_cut_off_after_the_idle_timeout() {
    let port = router(Some(target().await)).await;
    for (what, sent) in [
        ("silent", &b""[..]),
        ("half a head", &b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "[..]),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        s.write_all(sent).await.expect("send");
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{what}: the router kept the connection 10 s"
        );
        assert!(
            started.elapsed() < IDLE * 4,
            "{what}: closed after {:?}",
            started.elapsed()
        );
    }
}
