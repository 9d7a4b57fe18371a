//! Malformed HTTP from a hostile or broken client: a bad request line, an invalid header,
//! headers too large or too many, a bad chunked body, an HTTP/2 preface to this HTTP/1.1
//! port, bytes that are not text. Each gets a 4xx or a closed connection, never a 5xx or a
//! hang, and the server answers a well-formed request afterwards as before.

use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wasmlens_test_support::{Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
/// The longest a client waits for the server to answer or close.
const WAIT: Duration = Duration::from_secs(10);

/// Sends `bytes` on a fresh connection and reads until the response's head is complete
/// or the server closes: the status it answered, or `None` if it closed without one; and
/// the connection, still open if it is.
async fn exchange(server: &Wasmlens, bytes: &[u8]) -> (Option<u16>, tokio::net::TcpStream) {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    // The server may close before it has read everything: that is an answer too.
    let _ = stream.write_all(bytes).await;
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    let read = async {
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the server neither answered nor closed");
    let head = String::from_utf8_lossy(&received);
    let status = head.strip_prefix("HTTP/1.1 ").and_then(|h| h.get(..3));
    (status.map(|s| s.parse().unwrap()), stream)
}

/// Whether the server closes `stream` (reading and dropping whatever else it sends).
async fn closes(mut stream: tokio::net::TcpStream) -> bool {
    let mut buf = [0; 4096];
    let drained = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, drained).await.is_ok()
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_or_a_closed_connection_and_nothing_else_is_affected() {
    let server = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &[]).await;
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge_header = format!("x-big: {}\r\n", "a".repeat(100 * 1024));
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a bad request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("no version", b"GET /\r\n\r\n".to_vec()),
        ("an unknown version", b"GET / HTTP/7.3\r\nhost: x\r\n\r\n".to_vec()),
        ("a space in a header name", b"GET / HTTP/1.1\r\nho st: x\r\n\r\n".to_vec()),
        ("a header without a colon", b"GET / HTTP/1.1\r\nhost x\r\n\r\n".to_vec()),
        (
            "200 headers",
            format!("GET / HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n").into_bytes(),
        ),
        (
            "a 100 KiB header",
            format!("GET / HTTP/1.1\r\nhost: x\r\n{huge_header}\r\n").into_bytes(),
        ),
        ("a 100 KiB request line", long_uri.into_bytes()),
        (
            "bad chunked encoding",
            b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            "both a length and chunks",
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
        ),
        ("a negative length", b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n".to_vec()),
        ("HTTP/2 with prior knowledge", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("bytes that are not text", vec![0xff, 0xfe, 0x00, 0x80, b'\r', b'\n', b'\r', b'\n']),
    ];
    for (what, bytes) in cases {
        let (status, stream) = exchange(&server, &bytes).await;
        match status {
            None => {}
            Some(400..500) => {}
            // A guest may answer before it reads the body (the hello guest never does):
            // then the body's error ends the connection.
            Some(200) if what.contains("chunk") => {
                assert!(closes(stream).await, "{what}: the connection stays open");
            }
            Some(other) => panic!("{what}: answered {other}"),
        }
        let (status, _, body) = http_get(&server.url("/"), &[]).await;
        assert_eq!((status, body.as_str()), (200, "hello"), "after {what}");
    }
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
