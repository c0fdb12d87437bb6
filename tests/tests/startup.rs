//! A log's start says what it does: opening the storage, reading the events back (with their
//! number), and when its state is rebuilt, before the node is ready.
use journey_tests::*;
use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Stdio},
};

/// A log-only `journey up` on `data` (its anchor in `dir`) logging its start at info level: the
/// child, its standard error kept, and its ready line.
fn start_logging(dir: &Path, data: &Path) -> (Child, String) {
    let mut child = log_only_up(data)
        .args(["--anchor-file", dir.join("anchor.json").to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    (child, ready)
}

/// Stops `child` and returns what it logged.
fn stop_and_read_log(mut child: Child) -> String {
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[tokio::test]
async fn a_restart_says_it_reads_the_log_back_and_when_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let server = Server::start(&data, &["--no-reactor", "--no-read-models"]);
        let mut c = server.client().await;
        append_batch(
            &mut c,
            (0..3).map(|i| observation("U1", i as f64)).collect(),
        )
        .await;
    }
    let (child, ready) = start_logging(dir.path(), &data);
    assert!(ready.starts_with("ready "), "{ready:?}");
    let err = stop_and_read_log(child);
    let at = |what: &str| {
        err.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the start's log:\n{err}"))
    };
    let storage = at("opening the event log's storage");
    let reading = at("opening the event log: reading its 3 events back");
    let rebuilt = at("event log state rebuilt from 3 events in");
    assert!(storage < reading && reading < rebuilt, "{err}");
}

/// After an orderly stop the next start reads back only what came after its checkpoint, and the
/// state is whole: a journey rule, an event id and a stream version carry over the restart.
#[tokio::test]
async fn after_an_orderly_stop_a_restart_starts_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admission = admitted("U2", "E-U2", 3600);
    {
        let mut server = Server::start(&data, &["--no-reactor", "--no-read-models"]);
        let mut c = server.client().await;
        append_batch(&mut c, vec![admission.clone(), observation("U2", 1.0)]).await;
        assert!(server.terminate().success(), "an orderly stop");
    }
    assert!(
        data.join("state.checkpoint").exists(),
        "the stop saved the log's state"
    );
    let (child, ready) = start_logging(dir.path(), &data);
    let grpc = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap_or_else(|| panic!("no grpc= in {ready:?}"))
        .to_string();
    let mut c = client::connect(&format!("http://{grpc}"), None)
        .await
        .unwrap();
    // The retry of a stored event is recognised; the open stay still refuses a second one.
    let retry = c.append(batch(vec![admission])).await.unwrap().into_inner();
    assert!(retry.deduplicated);
    let second = c
        .append(batch(vec![admitted("U2", "E-U2-bis", 1800)]))
        .await
        .unwrap_err();
    assert_eq!(second.code(), tonic::Code::FailedPrecondition, "{second:?}");
    let next = c
        .append(batch(vec![observation("U2", 2.0)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.appended[0].stream_version, 3);
    let err = stop_and_read_log(child);
    assert!(
        err.contains("opening the event log from its checkpoint at position 2: reading back the 0 events after it"),
        "{err}"
    );
    assert!(!err.contains("reading its 2 events back"), "{err}");
}
