//! `lethe demo --serve` and `lethe serve` through the binary: the address
//! and token are printed, the API answers with that token (and refuses
//! without it), and SIGTERM stops the server cleanly (exit 0).

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A plain HTTP/1.1 GET: `(status, body)`.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn demo_serve_prints_the_address_and_a_working_token_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("lethe-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .args(["--serve", "--listen", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("lethe demo --serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut serving, mut token) = (false, None);
    let start = Instant::now();
    let mut line = String::new();
    while token.is_none() && start.elapsed() < Duration::from_secs(60) {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains(&format!("serving on http://{addr}/")) {
            serving = true;
        }
        if let Some(t) = line
            .split_whitespace()
            .find(|w| w.starts_with("lethe_") && w.len() == 70)
        {
            token = Some(t.to_string());
        }
    }
    assert!(serving, "the address was not printed");
    let token = token.expect("an admin token was printed");

    let (status, body) = get(&addr, "/v1/whoami", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"demo-admin\"") && body.contains("\"admin\""),
        "{body}"
    );
    let (status, _) = get(&addr, "/v1/whoami", None);
    assert_eq!(status, 401);
    // The demo's own deletions are there, and the console page is served.
    let (status, body) = get(&addr, "/v1/deletions", Some(&token));
    assert_eq!(status, 200);
    assert!(body.contains("\"kind\":\"erase\""), "{body}");
    let (status, body) = get(&addr, "/", None);
    assert_eq!(status, 200);
    assert!(body.contains("/console/app.js"));

    // SIGTERM: a clean stop.
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
