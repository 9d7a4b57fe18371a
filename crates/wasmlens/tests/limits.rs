//! What a client may send `wasmlens serve`, held to the byte as documented.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wasmlens_test_support::{Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");

/// Sends `head` as it is on a connection of its own; returns the status the server
/// answers with.
async fn status_of(server: &Wasmlens, head: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "closed without a status line");
        answer.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A GET of `/` with `headers`, as a client writes it.
fn head(server: &Wasmlens, headers: &[(String, String)]) -> String {
    let mut head = format!("GET / HTTP/1.1\r\nhost: {}\r\n", server.addr());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head + "\r\n"
}

#[tokio::test]
async fn the_header_limit_holds_to_the_byte_for_one_large_header_and_for_many_small_ones() {
    let hello = guest("http-hello");
    let flags = ["--max-request-header-size", "1KiB", hello.to_str().unwrap()];
    let server = Wasmlens::serve(BIN, &flags, &[]).await;

    // One header that brings the head to exactly 1024 bytes, then one byte more.
    let filler = |len: usize| vec![("x-fill".to_owned(), "x".repeat(len))];
    let room = 1024 - head(&server, &filler(0)).len();
    assert_eq!(head(&server, &filler(room)).len(), 1024);
    assert_eq!(status_of(&server, &head(&server, &filler(room))).await, 200);
    assert_eq!(
        status_of(&server, &head(&server, &filler(room + 1))).await,
        431
    );
    // A header of 2 KB, well under what hyper buffers.
    assert_eq!(status_of(&server, &head(&server, &filler(2000))).await, 431);

    // Thirty small headers fit; forty (1,160 bytes of them) do not.
    let small = |count: usize| -> Vec<(String, String)> {
        (0..count)
            .map(|i| (format!("x-h{i:02}"), "v".repeat(20)))
            .collect()
    };
    assert_eq!(status_of(&server, &head(&server, &small(30))).await, 200);
    assert_eq!(status_of(&server, &head(&server, &small(40))).await, 431);
    let forty = small(40);
    let headers: Vec<(&str, &str)> = forty
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (_, _, body) = http_get(&server.url("/"), &headers).await;
    assert_eq!(
        body,
        "431 Request Header Fields Too Large: the request line and headers are larger than 1024 bytes\n"
    );
    let (status, _, body) = http_get(&server.url("/"), &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "hello"),
        "the server is still up"
    );
    server.terminate().await;

    // The default, 64 KiB: one header of 100 KB.
    let server = Wasmlens::serve(BIN, &[hello.to_str().unwrap()], &[]).await;
    let large = "x".repeat(100_000);
    let (status, _, body) = http_get(&server.url("/"), &[("x-large", &large)]).await;
    assert_eq!(status, 431, "{body}");
    server.terminate().await;
}
