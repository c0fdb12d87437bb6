//! The acknowledgement of one message. Original mode (MSH-15 and MSH-16 empty): `AA` accepted,
//! `AE` error in the content, `AR` rejected (unsupported, unreadable, or the log unavailable:
//! resend later). Enhanced mode (either set): the commit acknowledgement `CA`/`CE`/`CR`, with the
//! same meanings. The answer swaps sending and receiving application and facility, carries
//! `MSH-9 = ACK^<trigger>^ACK` and `MSA-2 = MSH-10`, and, when not accepted, an `ERR` segment with
//! the HL7 error code (table 0357), the field at fault and the journey rule.
use crate::charset::Charset;
use crate::message::{Encoding, Message};

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The content is wrong (a field, a journey rule): resending it unchanged will not help.
    Error,
    /// Not taken at all: unsupported, unreadable, or the log could not take it now.
    Rejected,
}

/// HL7 table 0357, the codes this listener answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    SegmentSequence,
    RequiredFieldMissing,
    DataType,
    TableValueNotFound,
    UnsupportedMessageType,
    UnsupportedEventCode,
    UnsupportedVersion,
    UnknownKey,
    DuplicateKey,
    Internal,
}

impl ErrorCode {
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "100",
            ErrorCode::RequiredFieldMissing => "101",
            ErrorCode::DataType => "102",
            ErrorCode::TableValueNotFound => "103",
            ErrorCode::UnsupportedMessageType => "200",
            ErrorCode::UnsupportedEventCode => "201",
            ErrorCode::UnsupportedVersion => "203",
            ErrorCode::UnknownKey => "204",
            ErrorCode::DuplicateKey => "205",
            ErrorCode::Internal => "207",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataType => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedVersion => "Unsupported version id",
            ErrorCode::UnknownKey => "Unknown key identifier",
            ErrorCode::DuplicateKey => "Duplicate key identifier",
            ErrorCode::Internal => "Application internal error",
        }
    }
}

/// Why a message was not accepted: the HL7 code, the field at fault (`PID-3`), the journey rule
/// (`no_open_admission`) and a sentence for the interface engine's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: ErrorCode,
    pub field: Option<String>,
    pub rule: Option<String>,
    pub text: String,
}

impl Problem {
    pub fn new(code: ErrorCode, field: &str, text: impl Into<String>) -> Problem {
        Problem {
            code,
            field: (!field.is_empty()).then(|| field.to_string()),
            rule: None,
            text: text.into(),
        }
    }
}

/// The request's header fields an answer needs (whatever could be read of them).
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub sending: [String; 2],
    pub receiving: [String; 2],
    pub control_id: String,
    pub processing_id: String,
    pub version: String,
    pub trigger: String,
    pub enhanced: bool,
    pub charset: Option<Charset>,
}

impl Header {
    pub fn of(m: &Message) -> Header {
        let hd = |f| m.components("MSH", f).join("^");
        Header {
            sending: [hd(3), hd(4)],
            receiving: [hd(5), hd(6)],
            control_id: m.value("MSH", 10),
            processing_id: m.value("MSH", 11),
            version: m.value("MSH", 12),
            trigger: m.trigger(),
            enhanced: !m.value("MSH", 15).is_empty() || !m.value("MSH", 16).is_empty(),
            charset: Some(m.charset),
        }
    }

    /// What can be read of an MSH the parser refused (odd characters, unknown character set),
    /// so that even a refusal names the message it refuses.
    pub fn salvage(bytes: &[u8]) -> Header {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let line_end = bytes
            .iter()
            .position(|b| *b == b'\r' || *b == b'\n')
            .unwrap_or(bytes.len());
        let line = String::from_utf8_lossy(&bytes[..line_end]);
        if !line.starts_with("MSH") || line.len() < 4 {
            return Header::default();
        }
        let sep = line[3..].chars().next().unwrap_or('|');
        let parts: Vec<&str> = line.split(sep).collect();
        // parts[n] = MSH-(n+1); kept only when it holds nothing an answer could not carry.
        let field = |n: usize| {
            let v = parts.get(n - 1).copied().unwrap_or("");
            if v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
            {
                v.to_string()
            } else {
                String::new()
            }
        };
        Header {
            sending: [field(3), field(4)],
            receiving: [field(5), field(6)],
            control_id: field(10),
            processing_id: field(11),
            version: field(12),
            trigger: String::new(),
            enhanced: !field(15).is_empty() || !field(16).is_empty(),
            charset: None,
        }
    }
}

/// The acknowledgement, encoded in the request's character set.
pub fn ack(request: &Header, verdict: Verdict, problem: Option<&Problem>, ack_id: &str) -> Vec<u8> {
    let e = Encoding::STANDARD;
    let code = match (verdict, request.enhanced) {
        (Verdict::Accepted, false) => "AA",
        (Verdict::Error, false) => "AE",
        (Verdict::Rejected, false) => "AR",
        (Verdict::Accepted, true) => "CA",
        (Verdict::Error, true) => "CE",
        (Verdict::Rejected, true) => "CR",
    };
    let now = chrono::Utc::now().format("%Y%m%d%H%M%S+0000");
    let trigger = e.escape(&request.trigger);
    let version = if request.version.is_empty() {
        "2.5".to_string()
    } else {
        e.escape(&request.version)
    };
    let charset = request.charset.unwrap_or(Charset::Utf8);
    let msh18 = request.charset.map_or("", Charset::msh18);
    let mut text = format!(
        "MSH|^~\\&|{}|{}|{}|{}|{now}||ACK^{trigger}^ACK|{}|{}|{version}||||||{msh18}\r",
        hd(&request.receiving[0]),
        hd(&request.receiving[1]),
        hd(&request.sending[0]),
        hd(&request.sending[1]),
        e.escape(ack_id),
        e.escape(&request.processing_id),
    );
    let msa3 = problem.map_or(String::new(), |p| {
        e.escape(&p.text.chars().take(80).collect::<String>())
    });
    text.push_str(&format!(
        "MSA|{code}|{}|{msa3}\r",
        e.escape(&request.control_id)
    ));
    if let Some(p) = problem {
        let location = p.field.as_deref().map_or(String::new(), location);
        let rule = p.rule.as_deref().map_or(String::new(), |r| {
            format!("{}^{}^HL7_JOURNEY_RULE", e.escape(r), e.escape(r))
        });
        text.push_str(&format!(
            "ERR||{location}|{}^{}^HL70357|E|{rule}|||{}\r",
            p.code.code(),
            p.code.name(),
            e.escape(&p.text)
        ));
    }
    charset.encode(&text)
}

/// An HD (`app^oid^ISO`) kept as components: each escaped, joined with `^`.
fn hd(value: &str) -> String {
    value
        .split('^')
        .map(|c| Encoding::STANDARD.escape(c))
        .collect::<Vec<_>>()
        .join("^")
}

/// `PID-3` as an ERR-2 location (`PID^1^3`); a bare segment name (`ZBE`) as itself.
fn location(field: &str) -> String {
    match field.split_once('-') {
        Some((seg, n)) => format!("{seg}^1^{}", n.split('.').next().unwrap_or(n)),
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Header {
        Header::of(&Message::parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn an_accept_swaps_the_parties_and_echoes_the_control_id() {
        let h = header("MSH|^~\\&|APP|FAC^1.2^ISO|BACK|BONE|20260101||ADT^A01^ADT_A01|M-42|P|2.5");
        let a = String::from_utf8(ack(&h, Verdict::Accepted, None, "ACK1")).unwrap();
        let m = Message::parse(a.as_bytes()).unwrap();
        assert_eq!(m.components("MSH", 3), ["BACK"]);
        assert_eq!(m.components("MSH", 4), ["BONE"]);
        assert_eq!(m.components("MSH", 5), ["APP"]);
        assert_eq!(m.components("MSH", 6), ["FAC", "1.2", "ISO"]);
        assert_eq!(m.components("MSH", 9), ["ACK", "A01", "ACK"]);
        assert_eq!(m.value("MSH", 10), "ACK1");
        assert_eq!(m.value("MSH", 12), "2.5");
        assert_eq!(
            m.value("MSH", 18),
            "UNICODE UTF-8",
            "the request's character set"
        );
        assert_eq!(m.value("MSA", 1), "AA");
        assert_eq!(m.value("MSA", 2), "M-42");
        assert!(m.segment("ERR").is_none());
    }

    #[test]
    fn an_error_names_the_code_the_field_and_the_rule() {
        let h = header("MSH|^~\\&|APP|FAC|||20260101||ADT^A03|M|P|2.5|||AL|NE");
        let mut p = Problem::new(ErrorCode::Internal, "PV1-19", "no open stay | here");
        p.rule = Some("no_open_admission".into());
        let a = String::from_utf8(ack(&h, Verdict::Error, Some(&p), "X")).unwrap();
        let m = Message::parse(a.as_bytes()).unwrap();
        assert_eq!(m.value("MSA", 1), "CE", "MSH-15 set: enhanced mode");
        assert_eq!(m.components("ERR", 2), ["PV1", "1", "19"]);
        assert_eq!(m.get("ERR", 3, 1, 1, 1), "207");
        assert_eq!(m.get("ERR", 5, 1, 1, 1), "no_open_admission");
        assert_eq!(m.value("ERR", 8), "no open stay | here");
    }

    #[test]
    fn a_refused_header_is_salvaged() {
        let h = Header::salvage(b"MSH|^~\\&|APP|FAC|||x||ADT^A01|ID-7|P|2.5||||||KOI8-R\rPID");
        assert_eq!(h.control_id, "ID-7");
        assert_eq!(h.sending, ["APP".to_string(), "FAC".to_string()]);
        let a = ack(&h, Verdict::Rejected, None, "X");
        let m = Message::parse(&a).unwrap();
        assert_eq!(m.value("MSA", 1), "AR");
        assert_eq!(m.value("MSA", 2), "ID-7");
        assert!(Header::salvage(b"garbage").control_id.is_empty());
    }
}
