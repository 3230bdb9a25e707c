//! `learntrac-service healthcheck`: the image's HEALTHCHECK. Runtime images carry no curl,
//! so the binary probes its own load-balancer health endpoint.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const PATH: &str = "/api/LearnTrac/health";

/// GETs `PATH` on `port` at loopback; Ok when the answer is `200`.
pub fn probe(port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    // One write: a request split over several segments can meet a server that answers
    // after the first and closes, which resets the connection before the answer is read.
    let request = format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("read: {e}"))?;
    match &head[9..12] {
        b"200" => Ok(()),
        code => Err(format!("{PATH} answered {}", String::from_utf8_lossy(code))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(status: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                // The whole request head, so closing leaves nothing unread (which would
                // reset the connection under the client).
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && matches!(s.read(&mut byte), Ok(1)) {
                    head.push(byte[0]);
                }
                let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        port
    }

    #[test]
    fn healthy_and_unhealthy_answers() {
        assert_eq!(probe(serve_once("200 OK"), Duration::from_secs(2)), Ok(()));
        let err = probe(
            serve_once("503 Service Unavailable"),
            Duration::from_secs(2),
        );
        assert_eq!(err, Err(format!("{PATH} answered 503")));
    }

    #[test]
    fn nothing_listening_is_an_error() {
        // Port 1 (tcpmux) has no listener. A port freed here instead could be handed to
        // the other test's server at once, and this probe would take its one answer.
        assert!(probe(1, Duration::from_secs(1)).is_err());
    }
}
