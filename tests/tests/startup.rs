//! A log's start says what it does: opening the storage, reading the events back (with their
//! number), and when its state is rebuilt, before the node is ready.
use journey_tests::*;
use std::{
    io::{BufRead, BufReader, Read},
    process::Stdio,
};

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
    let mut child = log_only_up(&data)
        .args([
            "--anchor-file",
            dir.path().join("anchor.json").to_str().unwrap(),
        ])
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
    assert!(ready.starts_with("ready "), "{ready:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let at = |what: &str| {
        err.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the start's log:\n{err}"))
    };
    let storage = at("opening the event log's storage");
    let reading = at("opening the event log: reading its 3 events back");
    let rebuilt = at("event log state rebuilt from 3 events in");
    assert!(storage < reading && reading < rebuilt, "{err}");
}
