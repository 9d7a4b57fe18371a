//! The outbound allow-list (`--allow-outbound`) as a guest would try to get around it: a
//! request goes out only to a host and port the list names, spelled as the list spells it.
//! Another spelling of an allowed address, another port, or a user in the authority is
//! denied before any connection is made (wasi:http's `HTTP-request-denied`, code 015).

use wasmlens_test_support::{Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");

/// What the fetch guest answers when wasmlens denies its request.
const DENIED: (u16, &str) = (502, "fetch failed: error-code 015\n");

/// What the fetch guest answers when told to fetch `url` with `allow` allowed.
async fn fetch(url: &str, allow: &[&str]) -> (u16, String) {
    let mut flags = Vec::new();
    for pattern in allow {
        flags.extend(["--allow-outbound", pattern]);
    }
    let server = Wasmlens::serve_fetching(BIN, url, &flags, &[]).await;
    let (status, _, body) = http_get(&server.url("/"), &[]).await;
    (status, body)
}

#[tokio::test]
async fn outgoing_requests_reach_only_allowed_hosts() {
    let upstream = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &[]).await;
    let port = upstream.addr().port();
    let target = upstream.url("/");
    let (status, body) = fetch(&target, &[]).await;
    assert_eq!(
        (status, body.as_str()),
        DENIED,
        "nothing is allowed by default"
    );

    for allowed in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        "127.0.0.1:*".to_owned(),
        "*".to_owned(),
    ] {
        let (status, body) = fetch(&target, &[&allowed]).await;
        assert_eq!((status, body.as_str()), (200, "hello"), "{allowed}");
    }
    let by_name = format!("http://localhost:{port}/");
    let (status, body) = fetch(&by_name, &[&format!("localhost:{port}")]).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
}

#[tokio::test]
async fn another_spelling_port_or_user_of_an_allowed_host_is_denied() {
    let upstream = Wasmlens::serve(BIN, &[guest("http-hello").to_str().unwrap()], &[]).await;
    let port = upstream.addr().port();
    let ip = format!("127.0.0.1:{port}");
    let cases = [
        // The address of an allowed name, and the name of an allowed address.
        (
            format!("localhost:{port}"),
            format!("http://127.0.0.1:{port}/"),
        ),
        (ip.clone(), format!("http://localhost:{port}/")),
        // Other forms of an allowed IPv4 address, which the resolver would take.
        (ip.clone(), format!("http://127.1:{port}/")),
        (ip.clone(), format!("http://2130706433:{port}/")),
        (ip.clone(), format!("http://0x7f000001:{port}/")),
        (ip.clone(), format!("http://[::ffff:127.0.0.1]:{port}/")),
        // Another port of an allowed host.
        (ip.clone(), format!("http://127.0.0.1:{}/", port + 1)),
        (ip.clone(), "http://127.0.0.1/".to_owned()),
        // A user in the authority: naming the allowed host as the user, or as the host.
        (
            ip.clone(),
            format!("http://127.0.0.1:{port}@localhost:{port}/"),
        ),
        (ip.clone(), format!("http://user:secret@127.0.0.1:{port}/")),
        // A subdomain pattern does not allow the domain itself, nor a look-alike.
        (
            "*.localhost".to_owned(),
            format!("http://localhost:{port}/"),
        ),
        ("*.host".to_owned(), format!("http://localhost:{port}/")),
    ];
    for (allowed, url) in cases {
        let (status, body) = fetch(&url, &[&allowed]).await;
        assert_eq!(
            (status, body.as_str()),
            DENIED,
            "{url} with --allow-outbound {allowed}"
        );
    }
}
