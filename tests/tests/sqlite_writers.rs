//! One SQLite file, many writers: on `journey up`'s embedded default the folds of every read
//! model, their upkeep and the access log write the same file at once. Each waits its turn; none
//! is refused "database is locked" and paused (a paused fold tries again only after a backoff of up
//! to 10 s, and the dashboard shows that much less meanwhile).
use journey_tests::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_writer_of_the_read_models_file_waits_its_turn() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Server::start_logging(&dir.path().join("data"), &[], &log);
    // Reads (each recorded in the access log) go on while journeys are appended and folded.
    let grpc = server.grpc.clone();
    let reader = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut c = client::connect(&grpc, None).await.unwrap();
        let mut reads = 0;
        let mut patient: Option<String> = None;
        while Instant::now() < deadline && reads < 60 {
            all_stays_paged(&grpc, 50).await;
            match &patient {
                Some(p) => _ = patient_events(&mut c, p.as_str()).await,
                None => {
                    patient = read_log(&grpc, None)
                        .await
                        .first()
                        .map(|e| e.patient_id.clone())
                }
            }
            reads += 1;
        }
        reads
    });
    for seed in ["1", "2", "3"] {
        let seeded = ["--patients", "100", "--days", "120", "--seed", seed];
        simulate_into(&server.grpc, None, &seeded);
    }
    let reads = reader.await.unwrap();
    assert!(reads >= 60, "only {reads} reads in two minutes");
    let (head, _) = replicated::head(&server.grpc).await;
    wait_projected(&server.grpc, head).await;

    let written = std::fs::read_to_string(&log).unwrap();
    for refusal in ["database is locked", "projection paused"] {
        assert!(
            !written.contains(refusal),
            "the server log says {refusal:?}:\n{written}"
        );
    }
}
