//! Which patient a refused call asked about, so that the access log records it even though the
//! call never reached its service. The request message is decoded with the descriptors of our
//! protos: any unary request with a `patient_id` field names its patient.
use journey_proto::FILE_DESCRIPTOR_SET;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use std::{sync::LazyLock, time::Duration};

static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("embedded descriptor set"));

/// Largest request body read to find the patient (a refused call's body is read only for this).
const MAX_BODY: usize = 64 * 1024;

fn method(path: &str) -> Option<MethodDescriptor> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    POOL.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

/// Whether `path` is a method of one of our services.
pub fn is_known(path: &str) -> bool {
    method(path).is_some()
}

/// The `patient_id` of the gRPC request at `path` whose body is `body`; empty when the call is
/// not about one patient, streams its requests, or its body cannot be read within a second.
pub async fn of_refused<B>(path: &str, body: B) -> String
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    let Some(m) = method(path).filter(|m| !m.is_client_streaming()) else {
        return String::new();
    };
    let Some(field) = m.input().get_field_by_name("patient_id") else {
        return String::new();
    };
    let limited = http_body_util::Limited::new(body, MAX_BODY + 5);
    let bytes = match tokio::time::timeout(Duration::from_secs(1), limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => return String::new(),
    };
    // One gRPC frame: compressed flag, big-endian length, the message.
    if bytes.len() < 5 || bytes[0] != 0 {
        return String::new();
    }
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    let Some(message) = bytes.get(5..5 + len) else {
        return String::new();
    };
    DynamicMessage::decode(m.input(), message)
        .ok()
        .and_then(|d| d.get_field(&field).as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::{prost::Message, v1};

    /// `of_refused` for the message `m` sent as one gRPC frame to `path`.
    fn at(path: &str, m: &impl Message) -> String {
        let body = m.encode_to_vec();
        let mut framed = vec![0];
        framed.extend((body.len() as u32).to_be_bytes());
        framed.extend(body);
        let body = http_body_util::Full::new(bytes::Bytes::from(framed));
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(of_refused(path, body))
    }

    #[test]
    fn the_patient_of_a_patient_scoped_call() {
        let follow_up = v1::FollowUpRequest {
            patient_id: "P-7".into(),
            ..Default::default()
        };
        assert_eq!(at("/journey.v1.Coordination/FollowUp", &follow_up), "P-7");
        let stays = v1::PatientStaysRequest {
            patient_id: "P-8".into(),
        };
        assert_eq!(at("/journey.v1.Readmission/PatientStays", &stays), "P-8");
        // Not about one patient, or not one of ours: nothing.
        assert_eq!(
            at(
                "/journey.v1.Coordination/Worklist",
                &v1::WorklistRequest::default()
            ),
            ""
        );
        assert_eq!(at("/nope.Service/Call", &stays), "");
    }
}
