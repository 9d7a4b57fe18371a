//! Slow and idle clients cannot hold a server: hundreds of connections that send their
//! headers a byte a second are disconnected after `--header-read-timeout`, an idle
//! kept-alive connection after `--idle-timeout`, and meanwhile everyone else is answered
//! as usual.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wasmlens_test_support::{Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);
const SLOW_CLIENTS: usize = 300;

/// A client that starts a request and then sends its headers a byte a second, until the
/// server closes the connection: when that happened.
async fn slowloris(server: std::net::SocketAddr) -> Instant {
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut buf = [0; 1024];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {} // a 408 or the like before the close
            },
            _ = ticks.tick() => {
                if stream.write_all(b"a").await.is_err() {
                    return Instant::now();
                }
            }
        }
    }
}

/// Whether the server closes `stream` within [`WAIT`].
async fn closed(mut stream: TcpStream) -> bool {
    let mut buf = [0; 1024];
    let eof = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, eof).await.is_ok()
}

#[tokio::test]
async fn slow_clients_are_disconnected_while_everyone_else_is_served() {
    let hello = guest("http-hello");
    // The idle timeout longer than the test waits: only the header read timeout can
    // cut the slow clients off.
    let args = [
        "--header-read-timeout",
        "2s",
        "--idle-timeout",
        "10m",
        hello.to_str().unwrap(),
    ];
    let server = Wasmlens::serve(BIN, &args, &[]).await;
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| tokio::spawn(slowloris(server.addr())))
        .collect();

    // Everyone else is served meanwhile, before the slow ones are cut off.
    for _ in 0..20 {
        let (status, _, body) = http_get(&server.url("/"), &[]).await;
        assert_eq!((status, body.as_str()), (200, "hello"));
    }
    let served = Instant::now();

    // A connection that never sends a byte is cut off by the header read timeout too.
    let silent = TcpStream::connect(server.addr()).await.unwrap();
    assert!(closed(silent).await, "a silent connection is kept forever");

    for client in slow {
        let cut_off = tokio::time::timeout(WAIT, client)
            .await
            .expect("a slow client is never disconnected")
            .unwrap();
        assert!(served < cut_off, "the others waited for the slow ones");
    }
    let (status, _, _) = http_get(&server.url("/"), &[]).await;
    assert_eq!(status, 200);
    let (exit, stderr) = server.terminate().await;
    assert!(exit.success(), "{stderr}");
}

/// Sends one request on `stream` and reads its whole response: the hello guest's body is
/// chunked, and the head and the body may arrive in separate reads.
async fn one_request(stream: &mut TcpStream) {
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = async {
        let mut buf = [0; 256];
        // The last chunk, after the head's end or a chunk's.
        while !response.ends_with(b"\r\n0\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed mid-response: {:?}",
                String::from_utf8_lossy(&response)
            );
            response.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("no whole response in time");
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout_alone() {
    let hello = guest("http-hello");
    // The header read timeout longer than the test waits: only the idle timeout can
    // close the connection.
    let args = [
        "--header-read-timeout",
        "10m",
        "--idle-timeout",
        "1s",
        hello.to_str().unwrap(),
    ];
    let server = Wasmlens::serve(BIN, &args, &[]).await;
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    // A client that keeps using its connection keeps it.
    for _ in 0..4 {
        one_request(&mut idle).await;
    }
    assert!(closed(idle).await, "an idle connection is kept forever");
    let (exit, stderr) = server.terminate().await;
    assert!(exit.success(), "{stderr}");
}
