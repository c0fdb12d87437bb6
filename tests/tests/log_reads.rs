//! The log's own reads (`EventLog.ReadStream`, `ReadAll`, `Subscribe`) are recorded in the access
//! log before their data goes out: the patient for a patient's stream, the position range for a
//! read of the whole log.
use journey_proto::v1::{
    audit_client::AuditClient, event_log_client::EventLogClient, AccessRecord, AccessesRequest,
    ReadAllRequest, ReadStreamRequest, SubscribeRequest,
};
use journey_tests::client::{channel, token};
use journey_tests::*;

const KEYS: &str = "\
key-0123456789-auditor auditor auditor-1 cnil
key-0123456789-reactor service reactor backbone
";

#[tokio::test]
async fn log_reads_are_recorded_before_data_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let admin = admin_token(&dir.path().join("data"));
    let mut as_admin = client::connect(&server.grpc, Some(&admin)).await.unwrap();
    append_batch(
        &mut as_admin,
        vec![admitted("P-R", "E-R", 7200), observation("P-S", 1.0)],
    )
    .await;

    let grpc = server.grpc.clone();
    let log = |key: &'static str| {
        let grpc = grpc.clone();
        async move {
            EventLogClient::with_interceptor(
                channel(&grpc).await.unwrap(),
                token(Some(key)).unwrap(),
            )
        }
    };
    let mut auditor = log("key-0123456789-auditor").await;
    let mut stream = auditor
        .read_stream(ReadStreamRequest {
            patient_id: "P-R".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some(), "P-R's events");
    let mut reactor = log("key-0123456789-reactor").await;
    let mut all = reactor
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(all.message().await.unwrap().is_some(), "the whole log");
    let mut live = reactor
        .subscribe(SubscribeRequest {
            from_position: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(live.message().await.unwrap().is_some(), "from position 2");

    let audit = AuditClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some("key-0123456789-auditor")).unwrap(),
    );
    let accesses = |patient: &'static str| {
        let request = AccessesRequest {
            patient_id: patient.into(),
            limit: 1000,
            ..Default::default()
        };
        let mut audit = audit.clone();
        async move { audit.accesses(request).await.unwrap().into_inner().records }
    };
    let of_patient: Vec<AccessRecord> = accesses("P-R").await;
    assert!(
        of_patient.iter().any(|r| r.call == "EventLog/ReadStream"
            && r.subject == "auditor-1"
            && r.outcome == "ok"),
        "the read of P-R's stream names P-R: {of_patient:?}"
    );
    let whole: Vec<AccessRecord> = accesses("").await;
    let read_all = whole
        .iter()
        .find(|r| r.call == "EventLog/ReadAll")
        .unwrap_or_else(|| panic!("ReadAll recorded: {whole:?}"));
    assert_eq!(read_all.subject, "reactor");
    assert!(
        read_all.detail.contains("positions 1 to 2"),
        "{}",
        read_all.detail
    );
    let subscribe = whole
        .iter()
        .find(|r| r.call == "EventLog/Subscribe")
        .unwrap_or_else(|| panic!("Subscribe recorded: {whole:?}"));
    assert!(
        subscribe.detail.contains("from position 2"),
        "{}",
        subscribe.detail
    );

    // A refused read is recorded too, and sends nothing.
    let refused = auditor
        .read_stream(ReadStreamRequest::default())
        .await
        .expect_err("a stream needs its patient");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let whole: Vec<AccessRecord> = accesses("").await;
    assert!(
        whole
            .iter()
            .any(|r| r.call == "EventLog/ReadStream" && r.outcome == "invalidargument"),
        "{whole:?}"
    );
}
