//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans go out over OTLP/HTTP, and the
//! spans of an event (its append, its publication on NATS, each projection) carry the event id as
//! their trace id. A small OTLP collector in the test receives them.
use journey_proto::v1::HeadRequest;
use journey_tests::*;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Accepts OTLP/HTTP posts and keeps their bodies (protobuf `ExportTraceServiceRequest`).
async fn collector() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                loop {
                    // Read headers, then the body announced by Content-Length.
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    assert!(head.starts_with("post /v1/traces"), "{head}");
                    kept.lock()
                        .unwrap()
                        .push(buf[end + 4..end + 4 + len].to_vec());
                    buf.drain(..end + 4 + len);
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (url, bodies)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn an_events_spans_share_its_trace_across_append_nats_and_projections() {
    let (endpoint, bodies) = collector().await;
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        dir.path(),
        &[
            "--nats-url",
            &nats.url(),
            "--nats-stream",
            "TRACES",
            "--no-reactor",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let admission = admitted("trace-patient", "E1", 3600);
    let id = uuid::Uuid::parse_str(&admission.event_id).unwrap();
    let mut c = server.client().await;
    c.append(batch(vec![admission])).await.unwrap();
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&server.grpc, head).await;

    // journey.append + journey.publish + journey.project (readmission, coordination).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all: Vec<u8> = bodies.lock().unwrap().concat();
        let spans = count(&all, id.as_bytes());
        let names = ["journey.append", "journey.publish", "journey.project"]
            .iter()
            .all(|n| count(&all, n.as_bytes()) > 0);
        if spans >= 4 && names {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{spans} spans in the trace of {id} so far; names present: {names}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
