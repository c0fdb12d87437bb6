//! The status a caller gets for a request the server cannot take, whatever layer refuses it: a
//! body that does not decode (a string that is not UTF-8) is `INVALID_ARGUMENT`, a message over
//! the decoding limit `RESOURCE_EXHAUSTED`, refused from its length before its body is read, with
//! the limit sized from `--max-event-bytes` × `--max-batch-events` and `--max-batch-bytes`.
use journey_proto::v1::{self, AppendResponse};
use journey_tests::*;
use tonic::{codegen::http::uri::PathAndQuery, Code, Status};

/// `AppendRequest` as an untyped sender writes it: `Event.patient_id` (field 2) as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct LooseAppend {
    #[prost(message, repeated, tag = "1")]
    events: Vec<LooseEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LooseEvent {
    #[prost(bytes = "vec", tag = "2")]
    patient_id: Vec<u8>,
}

/// `EventLog/Append` with `request`, bypassing the typed client.
async fn append_loose(server: &Server, request: LooseAppend) -> Status {
    let channel = client::channel(&server.grpc).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<LooseAppend, AppendResponse>::default();
    let path = PathAndQuery::from_static("/journey.v1.EventLog/Append");
    grpc.unary(tonic::Request::new(request), path, codec)
        .await
        .expect_err("refused")
}

async fn head(server: &Server) -> u64 {
    let mut c = server.client().await;
    c.head(v1::HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position
}

#[tokio::test]
async fn a_string_that_is_not_utf8_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let status = append_loose(
        &server,
        LooseAppend {
            events: vec![LooseEvent {
                patient_id: b"P\xff\xfe1".to_vec(),
            }],
        },
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("request: a string field is not valid UTF-8")
            && status.message().contains("patient_id"),
        "{}",
        status.message()
    );
    assert_eq!(head(&server).await, 0, "nothing written");
}

#[tokio::test]
async fn a_message_over_the_largest_batch_is_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--max-event-bytes", "4096", "--max-batch-events", "100"],
    );
    // 100 events of 4 KiB make a request of about 410 KiB: a 2 MiB body is refused outright.
    let junk = LooseAppend {
        events: vec![LooseEvent {
            patient_id: vec![b'x'; 2 << 20],
        }],
    };
    let status = append_loose(&server, junk).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let limit = 100 * (4096 + 91) + 64 * 1024;
    assert!(
        status.message().starts_with("request: ")
            && status
                .message()
                .contains(&format!("over this server's limit of {limit} bytes")),
        "{}",
        status.message()
    );
    // The largest batch the flags allow still goes through the decoder to the service's own
    // checks: 100 events just under 4 KiB each are appended.
    let mut c = server.client().await;
    let big = |i: usize| {
        let mut e = observation(&format!("B-{i}"), 1.0);
        e.source = "s".repeat(4096 - 300);
        e
    };
    let r = c.append(batch((0..100).map(big).collect())).await.unwrap();
    assert_eq!(r.into_inner().appended.len(), 100);
}

/// On default flags a 32 MiB body is refused from its length (the 16 MiB batch limit), and a batch
/// over `--max-batch-bytes` is refused whole, naming the limit, with nothing written.
#[tokio::test]
async fn a_batch_over_its_byte_limit_is_refused_before_and_after_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("default"), &[]);
    let junk = LooseAppend {
        events: vec![LooseEvent {
            patient_id: vec![b'x'; 32 << 20],
        }],
    };
    let status = append_loose(&server, junk).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let limit = (16 << 20) + 64 * 1024;
    assert!(
        status
            .message()
            .contains(&format!("over this server's limit of {limit} bytes")),
        "{}",
        status.message()
    );

    let server = Server::start(&dir.path().join("small"), &["--max-batch-bytes", "20000"]);
    let mut c = server.client().await;
    let before = head(&server).await;
    let big = |i: usize| {
        let mut e = observation(&format!("S-{i}"), 1.0);
        e.source = "s".repeat(1000);
        e
    };
    let e = c
        .append(batch((0..30).map(big).collect()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("the limit is 20000 bytes; split the batch"),
        "{}",
        e.message()
    );
    assert_eq!(head(&server).await, before, "nothing written");
    c.append(batch((0..10).map(big).collect())).await.unwrap();
}

/// A TCP relay to PostgreSQL that the test can cut: every relayed connection goes silent, and new
/// ones are accepted and never answered (a database host that froze, or a firewall dropping
/// packets: the worst case, where nothing is refused and every wait runs to its timeout).
struct PgRelay {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl PgRelay {
    async fn start() -> PgRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut held = Vec::new(); // black-holed connections, kept open
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watch.borrow() {
                    held.push(inbound);
                    continue;
                }
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut pg) = tokio::net::TcpStream::connect("127.0.0.1:5432").await else {
                        return;
                    };
                    let cut = async {
                        let _ = watch.wait_for(|cut| *cut).await;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut pg) => return,
                        _ = cut => {}
                    }
                    // Stalled: open and silent until the database is back.
                    let _ = watch.wait_for(|cut| !*cut).await;
                });
            }
        });
        PgRelay { port, cut }
    }

    fn url(&self, db: &PgDb) -> String {
        db.url.replace(":5432/", &format!(":{}/", self.port))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_while_the_database_is_down_fails_in_seconds_and_says_so() {
    use v1::{readmission_client::ReadmissionClient, RatesRequest};
    let db = PgDb::create();
    let relay = PgRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--database-url", &relay.url(&db)]);
    let mut c = server.client().await;
    append_batch(&mut c, vec![admitted("D1", "DE1", 3600)]).await;
    wait_projected(&server.grpc, 1).await;
    let mut rates = ReadmissionClient::new(client::channel(&server.grpc).await.unwrap());
    rates.rates(RatesRequest::default()).await.unwrap();

    relay.cut.send(true).unwrap();
    let started = std::time::Instant::now();
    let status = rates
        .rates(RatesRequest::default())
        .await
        .expect_err("no database, no answer");
    // Bounded well under sqlx's default 30 s wait, which is what the fix removes.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let m = status.message();
    assert!(
        m.contains("database lent no connection within 5 s") && m.contains("retry later"),
        "{m}"
    );
    // The driver's own words (addresses, pool internals) stay in the server log.
    for raw in ["127.0.0.1", "pool timed out", "error returned", "os error"] {
        assert!(
            !m.contains(raw),
            "raw database error sent to the client: {m}"
        );
    }
    // The dashboard too: a page that says so, in seconds.
    let started = std::time::Instant::now();
    let page = http_exchange(&server.http, "GET", "/", "", "").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the dashboard answered after {:?}",
        started.elapsed()
    );
    assert!(page.starts_with("HTTP/1.1 503"), "{page}");
    assert!(!page.contains("pool timed out"), "{page}");

    relay.cut.send(false).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rates.rates(RatesRequest::default()).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "queries did not recover with the database"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
