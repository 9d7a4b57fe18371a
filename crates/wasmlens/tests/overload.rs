//! Overload as a flood brings it: past `--max-concurrent-requests`, requests wait in a
//! bounded queue; past the queue (or its timeout) they are shed at once with a 503 and
//! `Retry-After`, traced and measured as such, while the admitted ones are served.

use std::time::{Duration, Instant};
use wasmlens_test_support::{OtlpReceiver, Transport, Wasmlens, guest, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_wasmlens");
const WAIT: Duration = Duration::from_secs(30);

/// Starts `server`'s two slots looping (each until the guest's 2 s timeout), and waits
/// until both guests run.
/// Each returns its status and when it came.
async fn fill_the_slots(
    server: &Wasmlens,
    receiver: &OtlpReceiver,
) -> Vec<tokio::task::JoinHandle<(u16, Instant)>> {
    let looping: Vec<_> = (0..2)
        .map(|_| {
            let url = server.url("/loop");
            tokio::spawn(async move { (http_get(&url, &[]).await.0, Instant::now()) })
        })
        .collect();
    // Each instance is made once it has its slot (the first at start).
    receiver
        .wait_until("both slots taken", WAIT, |r| {
            let made = r.spans().into_iter();
            made.filter(|s| s.name == "ComponentInstantiation").count() >= 3
        })
        .await;
    looping
}

#[tokio::test]
async fn a_flood_past_the_slots_and_the_queue_is_shed_with_503_and_the_rest_is_served() {
    let receiver = OtlpReceiver::start().await;
    let component = guest("http-misbehave");
    let args = [
        "--max-concurrent-requests",
        "2",
        "--max-queued-requests",
        "3",
        "--queue-timeout",
        "60s",
        "--timeout",
        "2s",
        component.to_str().unwrap(),
    ];
    let server = Wasmlens::serve(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    let looping = fill_the_slots(&server, &receiver).await;

    // Ten more at once: three wait for a slot, the other seven are shed.
    let flood: Vec<_> = (0..10)
        .map(|_| {
            let url = server.url("/ok");
            tokio::spawn(async move { (http_get(&url, &[]).await, Instant::now()) })
        })
        .collect();
    let mut answered = Vec::new();
    for request in flood {
        answered.push(request.await.unwrap());
    }
    let mut slots_freed = Vec::new();
    for looping in looping {
        let (status, at) = looping.await.unwrap();
        assert_eq!(status, 500, "the loops hit their timeout");
        slots_freed.push(at);
    }
    let slots_freed = slots_freed.into_iter().min().unwrap();
    let mut shed = 0;
    let mut served = 0;
    for ((status, headers, body), at) in answered {
        match status {
            503 => {
                // Shed while the slots were still taken: at once, not after a wait.
                assert!(at < slots_freed, "shed only once a slot was free");
                assert_eq!(headers["retry-after"], "1");
                assert!(body.contains("the queue is full"), "{body}");
                shed += 1;
            }
            200 => {
                assert_eq!(body, "ok\n");
                served += 1;
            }
            other => panic!("answered {other}: {body}"),
        }
    }
    assert_eq!((shed, served), (7, 3), "the queue held three");
    assert_eq!(
        http_get(&server.url("/ok"), &[]).await.0,
        200,
        "and then all is well"
    );
    server.terminate().await;

    let requests = receiver.wait_for_spans("HttpRequest", 13, WAIT).await;
    let shed_spans: Vec<_> = requests
        .iter()
        .filter(|s| s.attr("http.response.status_code") == Some("503"))
        .collect();
    assert_eq!(shed_spans.len(), 7);
    for span in shed_spans {
        assert_eq!(span.attr("error.type"), Some("QueueFull"));
        assert_eq!(span.status_code, 2);
    }
    receiver
        .wait_until("the shed requests measured", WAIT, |r| {
            r.metrics().iter().any(|m| {
                m.name == "http.server.request.duration"
                    && m.attributes
                        .get("http.response.status_code")
                        .map(String::as_str)
                        == Some("503")
                    && m.attributes.get("error.type").map(String::as_str) == Some("QueueFull")
                    && m.value == 7.0
            })
        })
        .await;
}

#[tokio::test]
async fn a_request_that_waits_past_the_queue_timeout_is_shed() {
    let receiver = OtlpReceiver::start().await;
    let component = guest("http-misbehave");
    let args = [
        "--max-concurrent-requests",
        "2",
        "--queue-timeout",
        "100ms",
        "--timeout",
        "2s",
        component.to_str().unwrap(),
    ];
    let server = Wasmlens::serve(BIN, &args, &receiver.exporter_env(Transport::Grpc)).await;
    let looping = fill_the_slots(&server, &receiver).await;
    let (status, headers, body) = http_get(&server.url("/ok"), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        looping.iter().all(|l| !l.is_finished()),
        "shed before a slot freed"
    );
    assert_eq!(headers["retry-after"], "1");
    assert!(
        body.contains("no request slot came free within 100ms"),
        "{body}"
    );
    server.terminate().await;
    receiver
        .wait_until("a QueueTimeout", WAIT, |r| {
            r.spans()
                .iter()
                .any(|s| s.attr("error.type") == Some("QueueTimeout"))
        })
        .await;
}
