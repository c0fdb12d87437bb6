//! What the HL7 tests share (`mod hl7_mllp;` in tests/tests/hl7.rs and hl7_pam_fr.rs): a node
//! with an MLLP listener, an MLLP client reading ACKs by hand (split on `\r` and `|`, not with the
//! crate under test), HL7 times, a patient's stream and what the read models say of the patient.
#![allow(dead_code)] // each test file uses its share

use journey_proto::v1::{self, Event, HeadRequest};
use journey_tests::*;
use std::{path::Path, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub const VT: u8 = 0x0B;
pub const FS: u8 = 0x1C;
pub const CR: u8 = 0x0D;
pub const ORG: &str = "chu-a";

/// `journey up --insecure` with an MLLP listener on a free port (and `extra` flags); the
/// listener's address.
pub fn up_with_mllp(dir: &Path, extra: &[&str]) -> (Server, String) {
    let mllp = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--mllp-addr", &mllp, "--mllp-organisation", ORG];
    args.extend_from_slice(extra);
    (Server::start(&dir.join("data"), &args), mllp)
}

pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![VT];
    out.extend_from_slice(message);
    out.extend_from_slice(&[FS, CR]);
    out
}

/// One connection to the listener, one message at a time.
pub struct Mllp(pub TcpStream);

impl Mllp {
    pub async fn connect(addr: &str) -> Mllp {
        Mllp(TcpStream::connect(addr).await.expect("MLLP connect"))
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.unwrap();
    }

    /// The next framed answer, within 20 s.
    pub async fn ack(&mut self) -> Ack {
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            loop {
                let n = self.0.read(&mut buf).await.unwrap();
                assert!(n > 0, "the listener closed the connection without an ACK");
                got.extend_from_slice(&buf[..n]);
                if got.ends_with(&[FS, CR]) {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("an ACK within 20 s");
        assert_eq!(got[0], VT, "an MLLP frame");
        Ack(got[1..got.len() - 2].to_vec())
    }

    pub async fn send(&mut self, message: &[u8]) -> Ack {
        self.send_raw(&frame(message)).await;
        self.ack().await
    }
}

/// An ACK, read by splitting segments on `\r` and fields on `|`.
pub struct Ack(Vec<u8>);

impl Ack {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
    /// SEG-n (for MSH, n ≥ 3: MSH-1 is the separator itself).
    pub fn field(&self, seg: &str, n: usize) -> String {
        let text = self.text();
        let Some(line) = text.split('\r').find(|l| l.starts_with(seg)) else {
            return String::new();
        };
        let index = if seg == "MSH" { n - 1 } else { n };
        line.split('|').nth(index).unwrap_or("").to_string()
    }
    pub fn code(&self) -> String {
        self.field("MSA", 1)
    }
}

/// HL7 time of `secs_ago` seconds ago, in UTC.
pub fn hl7_time(secs_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs_ago))
        .format("%Y%m%d%H%M%S+0000")
        .to_string()
}

/// The same instant as [`hl7_time`], as an event's `occurred_at` (to the second).
pub fn occurred(hl7: &str) -> journey_proto::prost_types::Timestamp {
    let t = chrono::DateTime::parse_from_str(hl7, "%Y%m%d%H%M%S%z").unwrap();
    journey_proto::prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// A PAM-FR style ADT message: MSH, EVN, PID, PV1 (encounter, unit, prior unit), ZBE (movement
/// id, its time, the action), ZFM (exit mode 8: home).
pub fn adt(trigger: &str, control: &str, patient: &str, movement: &str, when: &str) -> Vec<u8> {
    let action = if ["A11", "A12", "A13"].contains(&trigger) {
        "CANCEL"
    } else {
        "INSERT"
    };
    let (unit, prior) = if trigger == "A01" {
        ("CARDIO", "")
    } else {
        ("REA", "CARDIO")
    };
    format!(
        "MSH|^~\\&|GAM|CHU-A|JOURNEY|BACKBONE|{when}||ADT^{trigger}^ADT_A01|{control}|P|2.5|||||FRA|UNICODE UTF-8\r\
EVN|{trigger}|{when}\r\
PID|1||{patient}^^^CHU-A^PI||DOE^JANE||19600101|F\r\
PV1|1|I|{unit}^^^FAC-H|R||{prior}|||||||||||||ENC-{patient}\r\
ZBE|{movement}|{when}||{action}|N\r\
ZFM||8\r"
    )
    .into_bytes()
}

/// The event types of `events`, in order.
pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| journey_proto::EventType::of(e.payload.as_ref().unwrap()).name())
        .collect()
}

pub async fn head(client: &mut journey_tests::client::LogClient) -> u64 {
    client
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position
}

pub async fn stream(server: &Server, patient: &str) -> Vec<Event> {
    patient_events(&mut server.client().await, patient).await
}

/// What the read models say of `patient`'s stays, with the patient's own ids left out:
/// Readmission.PatientStays and Coordination.FollowUp.
pub async fn read_models(server: &Server, patient: &str) -> (Vec<v1::IndexStay>, String) {
    let channel = journey_tests::client::channel(&server.grpc).await.unwrap();
    let mut stays = v1::readmission_client::ReadmissionClient::new(channel.clone())
        .patient_stays(v1::PatientStaysRequest {
            patient_id: patient.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    for s in &mut stays {
        s.patient_id = String::new();
        s.encounter_id = String::new();
        s.first_encounter_id = String::new();
        s.readmit_encounter_id = String::new();
    }
    let mut follow_up = v1::coordination_client::CoordinationClient::new(channel)
        .follow_up(v1::FollowUpRequest {
            patient_id: patient.into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    follow_up.checkpoint = 0;
    let follow_up = format!("{follow_up:?}").replace(patient, "PATIENT");
    (stays, follow_up)
}
