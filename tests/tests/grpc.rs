//! The EventLog gRPC service on a real `journey up` (port 0): concurrent appends and reads,
//! Subscribe while appends continue, and every kind of bad input.
use futures::StreamExt;
use journey_proto::v1::{
    self, event::Payload, AppendRequest, HeadRequest, ReadAllRequest, ReadStreamRequest,
    SubscribeRequest, VerifyRequest,
};
use journey_tests::*;
use std::collections::{HashMap, HashSet};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_append_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut tasks = Vec::new();
    for c in 0..8 {
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let patient = format!("P-{c}");
            let mut positions = Vec::new();
            for i in 0..25 {
                let r = client
                    .append(batch(vec![observation(&patient, i as f64)]))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(r.appended[0].stream_version, i + 1);
                positions.push(r.appended[0].position);
            }
            positions
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        for p in t.await.unwrap() {
            assert!(all.insert(p), "position {p} given twice");
        }
    }
    assert_eq!(all, (1..=200).collect::<HashSet<u64>>());

    let mut client = server.client().await;
    let mut read = client
        .read_all(ReadAllRequest {
            from_position: 0,
            to_position: 0,
            batch_size: 7,
        })
        .await
        .unwrap()
        .into_inner();
    let mut expect = 1;
    while let Some(b) = read.next().await {
        for e in b.unwrap().events {
            assert_eq!(e.position, expect);
            assert_eq!(e.hash.len(), 32);
            expect += 1;
        }
    }
    assert_eq!(expect, 201);

    // Inclusive positions: from 150 starts with event 150.
    let mut read = client
        .read_all(ReadAllRequest {
            from_position: 150,
            to_position: 152,
            batch_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<u64> = read
        .next()
        .await
        .unwrap()
        .unwrap()
        .events
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(got, vec![150, 151, 152]);

    let mut stream = client
        .read_stream(ReadStreamRequest {
            patient_id: "P-3".into(),
            from_version: 20,
            batch_size: 2,
        })
        .await
        .unwrap()
        .into_inner();
    let mut versions = Vec::new();
    while let Some(b) = stream.next().await {
        versions.extend(b.unwrap().events.iter().map(|e| e.stream_version));
    }
    assert_eq!(versions, vec![20, 21, 22, 23, 24, 25]);

    let head = client.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(head.position, 200);
    let v = client
        .verify(VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.checked, 200);
    assert_eq!(v.head_hash, head.hash);

    // A range that cannot be verified is refused, naming the field, not answered "ok".
    for (from, to) in [(150, 100), (201, 0), (500, 600)] {
        let refused = client
            .verify(VerifyRequest {
                from_position: from,
                to_position: to,
                ..Default::default()
            })
            .await
            .expect_err("a range outside the log");
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{from}..{to}: {refused:?}"
        );
        assert_eq!(field_of(&refused), "from_position", "{from}..{to}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_from_zero_sees_every_event_once_in_order_while_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;
    for i in 0..50 {
        client
            .append(batch(vec![observation("S-0", i as f64)]))
            .await
            .unwrap();
    }
    let mut sub = client
        .subscribe(SubscribeRequest {
            from_position: 0,
            batch_size: 16,
        })
        .await
        .unwrap()
        .into_inner();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let grpc = server.grpc.clone();
            tokio::spawn(async move {
                let mut c = journey_tests::client::connect(&grpc, None).await.unwrap();
                for i in 0..100 {
                    let events = (0..(i % 3 + 1))
                        .map(|k| observation(&format!("S-{w}-{k}"), i as f64))
                        .collect();
                    c.append(batch(events)).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let total = client
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position;
    assert_eq!(total, 50 + 4 * (34 + 33 * 2 + 33 * 3));
    let mut expect = 1;
    while expect <= total {
        let b = sub.next().await.expect("stream open").unwrap();
        for e in b.events {
            assert_eq!(e.position, expect, "gap or duplicate");
            expect += 1;
        }
    }
    // And it stays live.
    client
        .append(batch(vec![observation("late", 1.0)]))
        .await
        .unwrap();
    let b = sub.next().await.unwrap().unwrap();
    assert_eq!(b.events[0].position, total + 1);
}

/// The field a refusal names (`BadRequest`), or the journey rule and the event it refused
/// (`PreconditionFailure`, as `rule:events[i]`).
fn field_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let bad = status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()));
    let rule = status.get_details_precondition_failure().and_then(|p| {
        p.violations
            .first()
            .map(|v| format!("{}:{}", v.r#type, v.subject))
    });
    bad.or(rule).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_status_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--max-event-bytes", "4096", "--max-batch-events", "100"],
    );
    let mut c = server.client().await;
    let ok = admitted("B-1", "E-1", 3600);
    c.append(batch(vec![ok.clone()])).await.unwrap();
    let head = || async {
        server
            .client()
            .await
            .head(HeadRequest {})
            .await
            .unwrap()
            .into_inner()
            .position
    };

    let mut cases: Vec<(&str, AppendRequest, Code, &str)> = Vec::new();
    let mut e = observation("B-2", 1.0);
    e.event_id = "not-a-uuid".into();
    cases.push((
        "non-uuid id",
        batch(vec![e]),
        Code::InvalidArgument,
        "events[0].event_id",
    ));
    let mut e = observation("B-2", 1.0);
    e.payload = None;
    cases.push((
        "missing payload",
        batch(vec![observation("B-2", 2.0), e]),
        Code::InvalidArgument,
        "events[1].payload",
    ));
    let mut e = observation("B-2", 1.0);
    e.patient_id.clear();
    cases.push((
        "missing patient",
        batch(vec![e]),
        Code::InvalidArgument,
        "events[0].patient_id",
    ));
    let mut e = observation("B-2", 1.0);
    e.occurred_at = Some(journey_proto::prost_types::Timestamp {
        seconds: -5_000_000_000,
        nanos: 0,
    });
    cases.push((
        "timestamp out of range",
        batch(vec![e]),
        Code::InvalidArgument,
        "events[0].occurred_at",
    ));
    let mut e = observation("B-2", 1.0);
    e.position = 9;
    cases.push((
        "log field set",
        batch(vec![e]),
        Code::InvalidArgument,
        "events[0].position",
    ));
    let mut e = observation("B-2", 1.0);
    if let Some(Payload::ObservationRecorded(o)) = e.payload.as_mut() {
        o.unit = "x".repeat(5000);
    }
    cases.push((
        "oversized event",
        batch(vec![e]),
        Code::ResourceExhausted,
        "",
    ));
    cases.push((
        "oversized batch",
        batch((0..101).map(|i| observation("B-3", i as f64)).collect()),
        Code::ResourceExhausted,
        "",
    ));
    cases.push((
        "empty batch",
        batch(vec![]),
        Code::InvalidArgument,
        "events",
    ));
    cases.push((
        "discharge without admission",
        batch(vec![observation("B-4", 1.0), discharged("B-4", "E-9", 60)]),
        Code::FailedPrecondition,
        "no_open_admission:events[1]",
    ));
    cases.push((
        "second open inpatient stay",
        batch(vec![admitted("B-1", "E-2", 60)]),
        Code::FailedPrecondition,
        "second_open_inpatient_stay:events[0]",
    ));
    cases.push((
        "version conflict",
        AppendRequest {
            events: vec![observation("B-1", 3.0)],
            expected_versions: HashMap::from([("B-1".into(), 7)]),
        },
        Code::Aborted,
        "",
    ));
    let mut reused = ok.clone();
    reused.patient_id = "B-9".into();
    cases.push((
        "event id reused for another patient",
        batch(vec![reused]),
        Code::AlreadyExists,
        "",
    ));
    let dup = observation("B-5", 1.0);
    cases.push((
        "duplicate id in batch",
        batch(vec![dup.clone(), dup]),
        Code::InvalidArgument,
        "events[1].event_id",
    ));

    for (name, req, code, field) in cases {
        let status = c.append(req).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {}", status.message());
        assert!(!status.message().is_empty(), "{name}");
        if !field.is_empty() {
            assert_eq!(field_of(&status), field, "{name}: {}", status.message());
        }
        assert_eq!(head().await, 1, "{name} wrote something");
    }
    let conflict = c
        .append(AppendRequest {
            events: vec![observation("B-1", 3.0)],
            expected_versions: HashMap::from([("B-1".into(), 7)]),
        })
        .await
        .unwrap_err();
    assert!(
        conflict.message().contains("actual 1"),
        "{}",
        conflict.message()
    );

    // Malformed protobuf on the wire: a raw gRPC frame of garbage.
    let status = raw_call(&server.grpc, b"\x0a\xff\xff\xff\xff\x0f").await;
    assert_ne!(status, Code::Ok);
    assert_eq!(head().await, 1);

    // The idempotent retry of the first batch returns its position and writes nothing.
    let r = c.append(batch(vec![ok])).await.unwrap().into_inner();
    assert!(r.deduplicated);
    assert_eq!(r.appended[0].position, 1);
    assert_eq!(head().await, 1);
    let _ = v1::Role::Gp;
}

/// Sends `body` as the request message of EventLog/Append, bypassing the typed client.
async fn raw_call(server: &str, body: &[u8]) -> Code {
    let channel = journey_tests::client::channel(server).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/journey.v1.EventLog/Append");
    let codec = RawCodec;
    match grpc
        .unary::<Vec<u8>, Vec<u8>, _>(tonic::Request::new(body.to_vec()), path, codec)
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[derive(Clone, Copy)]
struct RawCodec;
struct RawEnc;
struct RawDec;
impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEnc;
    type Decoder = RawDec;
    fn encoder(&mut self) -> RawEnc {
        RawEnc
    }
    fn decoder(&mut self) -> RawDec {
        RawDec
    }
}
impl tonic::codec::Encoder for RawEnc {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}
impl tonic::codec::Decoder for RawDec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let v = src.chunk().to_vec();
        src.advance(v.len());
        Ok(Some(v))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_stream_answers_each_batch_in_order_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let mut requests: Vec<AppendRequest> = (0..20)
        .map(|i| {
            batch(
                (0..50)
                    .map(|k| observation(&format!("AS-{k}"), i as f64))
                    .collect(),
            )
        })
        .collect();
    requests.push(batch(vec![discharged("AS-0", "NOPE", 10)]));
    let responses: Vec<_> = c
        .append_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(responses.len(), 21);
    for (i, r) in responses[..20].iter().enumerate() {
        let r = r.as_ref().unwrap();
        assert_eq!(r.appended.first().unwrap().position, i as u64 * 50 + 1);
    }
    assert_eq!(
        responses[20].as_ref().unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        c.head(HeadRequest {}).await.unwrap().into_inner().position,
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::{
        health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let channel = journey_tests::client::channel(&server.grpc).await.unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "journey.v1.EventLog".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        resp.next().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    assert!(
        list.service.iter().any(|s| s.name == "journey.v1.EventLog"),
        "{list:?}"
    );
}
