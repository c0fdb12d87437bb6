//! An HL7 v2 message as text: segments, fields, repetitions, components and subcomponents, with
//! the encoding characters the message declares in MSH-1/MSH-2 and its character set (MSH-18).
//!
//! Lenient where senders differ and nothing is lost: segments end at `\r`, `\n` or `\r\n`, a
//! leading byte-order mark is skipped, empty lines are ignored. Strict where a guess would be
//! wrong: a message that does not start with MSH, declares odd encoding characters or an unknown
//! character set is refused with the field at fault.
use crate::charset::Charset;

/// Why a message cannot be read; `field` is the HL7 location (`MSH-18`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub field: &'static str,
    pub message: String,
}

impl ParseError {
    fn new(field: &'static str, message: impl Into<String>) -> ParseError {
        ParseError {
            field,
            message: message.into(),
        }
    }
}

/// The separators a message declares (MSH-1, MSH-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: Option<char>,
    pub subcomponent: char,
}

impl Encoding {
    /// `|^~\&`, the separators every ACK of ours uses.
    pub const STANDARD: Encoding = Encoding {
        field: '|',
        component: '^',
        repetition: '~',
        escape: Some('\\'),
        subcomponent: '&',
    };

    /// Escapes `text` so that it reads back as itself inside one subcomponent.
    pub fn escape(&self, text: &str) -> String {
        let Some(esc) = self.escape else {
            return text.to_string();
        };
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            let code = match c {
                _ if c == self.field => Some('F'),
                _ if c == self.component => Some('S'),
                _ if c == self.repetition => Some('R'),
                _ if c == self.subcomponent => Some('T'),
                _ if c == esc => Some('E'),
                '\r' | '\n' => {
                    out.push(' ');
                    None
                }
                _ => {
                    out.push(c);
                    None
                }
            };
            if let Some(code) = code {
                out.push(esc);
                out.push(code);
                out.push(esc);
            }
        }
        out
    }

    /// Resolves the escape sequences of one subcomponent (`\F\ \S\ \T\ \R\ \E\ \Xhh…\`; the
    /// formatting ones, `\H\ \N\ \.br\`…, are dropped or become a line break).
    fn unescape(&self, raw: &str, charset: Charset) -> String {
        let Some(esc) = self.escape.filter(|e| raw.contains(*e)) else {
            return raw.to_string();
        };
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(start) = rest.find(esc) {
            out.push_str(&rest[..start]);
            let after = &rest[start + esc.len_utf8()..];
            let Some(end) = after.find(esc) else {
                // An escape character that opens nothing: kept as sent.
                out.push_str(&rest[start..]);
                return out;
            };
            let seq = &after[..end];
            match seq {
                "F" => out.push(self.field),
                "S" => out.push(self.component),
                "R" => out.push(self.repetition),
                "T" => out.push(self.subcomponent),
                "E" => out.push(esc),
                ".br" => out.push('\n'),
                _ if seq.starts_with('X') && seq.len() % 2 == 1 => {
                    let bytes: Option<Vec<u8>> = (1..seq.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&seq[i..i + 2], 16).ok())
                        .collect();
                    match bytes {
                        Some(b) => out.push_str(&charset.decode(&b)),
                        None => out.push_str(&rest[start..start + end + 2 * esc.len_utf8()]),
                    }
                }
                // Highlighting (\H\, \N\) and other formatting: no text of their own.
                _ => {}
            }
            rest = &after[end + esc.len_utf8()..];
        }
        out.push_str(rest);
        out
    }
}

/// One segment: its name and its fields as sent (escapes unresolved).
#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    /// `fields[n]` is SEG-n; `fields[0]` is the name. For MSH, `fields[1]` is MSH-1 (the field
    /// separator itself) and `fields[2]` MSH-2, as HL7 numbers them.
    fields: Vec<String>,
}

/// A parsed message.
#[derive(Debug, Clone)]
pub struct Message {
    pub encoding: Encoding,
    pub charset: Charset,
    pub segments: Vec<Segment>,
}

impl Message {
    /// Reads a message from the bytes of one frame.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        if !bytes.starts_with(b"MSH") {
            return Err(ParseError::new(
                "MSH",
                "the message does not start with an MSH segment: not HL7 v2",
            ));
        }
        let encoding = encoding_of(bytes)?;
        let charset = charset_of(bytes, encoding)?;
        let text = charset.decode(bytes);
        let segments = text
            .split(['\r', '\n'])
            .filter(|line| !line.trim().is_empty())
            .map(|line| split_segment(line, encoding))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Message {
            encoding,
            charset,
            segments,
        })
    }

    /// The first segment named `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// Every segment named `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.name == name)
    }

    /// One value, unescaped: `SEG-field[repetition].component.subcomponent`, every index from 1
    /// (repetition 1 = the first). Empty when absent.
    pub fn get(&self, seg: &str, field: usize, rep: usize, comp: usize, sub: usize) -> String {
        self.segment(seg)
            .map(|s| s.get(self, field, rep, comp, sub))
            .unwrap_or_default()
    }

    /// The first component of a field's first repetition, unescaped (`MSH-10`, `PV1-2`).
    pub fn value(&self, seg: &str, field: usize) -> String {
        self.get(seg, field, 1, 1, 1)
    }

    /// A field's components of its first repetition, unescaped, joined with `^` (an HD or a
    /// message type as one key: `ADT^A01^ADT_A01`).
    pub fn components(&self, seg: &str, field: usize) -> Vec<String> {
        self.segment(seg)
            .map(|s| s.components(self, field, 1))
            .unwrap_or_default()
    }

    /// MSH-9.2, the trigger event (`A01`).
    pub fn trigger(&self) -> String {
        self.get("MSH", 9, 1, 2, 1)
    }
}

impl Segment {
    /// The raw text of SEG-`field` (escapes unresolved), empty when absent.
    pub fn raw(&self, field: usize) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    /// The number of repetitions of a field (0 when empty).
    pub fn repetitions(&self, msg: &Message, field: usize) -> usize {
        let raw = self.raw(field);
        if raw.is_empty() {
            0
        } else if self.name == "MSH" && field <= 2 {
            1
        } else {
            raw.split(msg.encoding.repetition).count()
        }
    }

    /// One value, unescaped (indices from 1; empty when absent).
    pub fn get(&self, msg: &Message, field: usize, rep: usize, comp: usize, sub: usize) -> String {
        let raw = self.raw(field);
        if self.name == "MSH" && field <= 2 {
            return raw.to_string();
        }
        let enc = msg.encoding;
        let part = raw
            .split(enc.repetition)
            .nth(rep.saturating_sub(1))
            .and_then(|r| r.split(enc.component).nth(comp.saturating_sub(1)))
            .and_then(|c| c.split(enc.subcomponent).nth(sub.saturating_sub(1)))
            .unwrap_or("");
        enc.unescape(part, msg.charset)
    }

    /// A whole field as the message holds it: its repetitions, their components and those
    /// components' subcomponents, unescaped (MSH-1 and MSH-2 as one value each).
    pub fn tree(&self, msg: &Message, field: usize) -> Vec<Vec<Vec<String>>> {
        let raw = self.raw(field);
        if raw.is_empty() {
            return Vec::new();
        }
        if self.name == "MSH" && field <= 2 {
            return vec![vec![vec![raw.to_string()]]];
        }
        let enc = msg.encoding;
        raw.split(enc.repetition)
            .map(|r| {
                r.split(enc.component)
                    .map(|c| {
                        c.split(enc.subcomponent)
                            .map(|s| enc.unescape(s, msg.charset))
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    /// Every component of one repetition, unescaped (subcomponents kept, joined by `&`).
    pub fn components(&self, msg: &Message, field: usize, rep: usize) -> Vec<String> {
        let enc = msg.encoding;
        let raw = self.raw(field);
        let Some(r) = raw.split(enc.repetition).nth(rep.saturating_sub(1)) else {
            return Vec::new();
        };
        r.split(enc.component)
            .map(|c| {
                c.split(enc.subcomponent)
                    .map(|s| enc.unescape(s, msg.charset))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .collect()
    }
}

/// MSH-1 and MSH-2: five distinct separators, none a letter, digit or line end.
fn encoding_of(bytes: &[u8]) -> Result<Encoding, ParseError> {
    let field = *bytes.get(3).ok_or_else(|| {
        ParseError::new(
            "MSH-1",
            "the message ends before its field separator (MSH-1)",
        )
    })?;
    let rest = &bytes[4..];
    let end = rest.iter().position(|b| *b == field).unwrap_or(rest.len());
    let chars = &rest[..end];
    let odd = |b: u8| !b.is_ascii_graphic() || b.is_ascii_alphanumeric();
    if odd(field) || !(3..=5).contains(&chars.len()) || chars.iter().any(|b| odd(*b)) {
        return Err(ParseError::new(
            "MSH-2",
            "odd encoding characters: MSH-1 and MSH-2 must be printable separators such as |^~\\&",
        ));
    }
    let mut all = vec![field];
    all.extend_from_slice(chars);
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != all.len() {
        return Err(ParseError::new(
            "MSH-2",
            "odd encoding characters: the separators in MSH-1 and MSH-2 must all differ",
        ));
    }
    Ok(Encoding {
        field: field as char,
        component: chars[0] as char,
        repetition: chars[1] as char,
        escape: (chars.len() >= 3).then(|| chars[2] as char),
        subcomponent: chars.get(3).map_or('&', |b| *b as char),
    })
}

/// The character set MSH-18 names (read from the raw bytes: MSH itself is ASCII).
fn charset_of(bytes: &[u8], enc: Encoding) -> Result<Charset, ParseError> {
    let first = bytes
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(bytes.len());
    let msh = String::from_utf8_lossy(&bytes[..first]);
    // Split by the field separator: parts[0] = "MSH", parts[n] = MSH-(n+1).
    let declared = msh
        .split(enc.field)
        .nth(17)
        .unwrap_or("")
        .split(enc.repetition)
        .next()
        .unwrap_or("")
        .split(enc.component)
        .next()
        .unwrap_or("");
    Charset::named(declared, bytes).ok_or_else(|| {
        ParseError::new(
            "MSH-18",
            format!(
                "character set {declared:?} is not supported: send ASCII, 8859/1, 8859/15 or UNICODE UTF-8"
            ),
        )
    })
}

fn split_segment(line: &str, enc: Encoding) -> Result<Segment, ParseError> {
    let mut parts = line.split(enc.field);
    let name = parts.next().unwrap_or("").trim().to_string();
    if name.len() != 3 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::new(
            "segment",
            format!(
                "a segment name must be three letters or digits, not {:?}",
                name.chars().take(20).collect::<String>()
            ),
        ));
    }
    let mut fields = vec![name.clone()];
    if name == "MSH" {
        fields.push(enc.field.to_string());
    }
    fields.extend(parts.map(str::to_string));
    Ok(Segment { name, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A01: &str = "MSH|^~\\&|SEND|FAC^1.2.3^ISO|RECV|RFAC|20260101120000+0100||ADT^A01^ADT_A01|MSG-1|P|2.5|||||FRA|UNICODE UTF-8\r\
EVN|A01|20260101120000\r\
PID|1||IPP1^^^HOSP&1.2.250.1&ISO^PI~NIR1^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||Dupont\\S\\Durand^Jean||19500101|M\r";

    #[test]
    fn fields_components_repetitions_subcomponents() {
        let m = Message::parse(A01.as_bytes()).unwrap();
        assert_eq!(m.value("MSH", 1), "|");
        assert_eq!(m.value("MSH", 2), "^~\\&");
        assert_eq!(m.value("MSH", 10), "MSG-1");
        assert_eq!(m.trigger(), "A01");
        assert_eq!(m.components("MSH", 4), ["FAC", "1.2.3", "ISO"]);
        let pid = m.segment("PID").unwrap();
        assert_eq!(pid.repetitions(&m, 3), 2);
        assert_eq!(m.get("PID", 3, 2, 1, 1), "NIR1");
        assert_eq!(m.get("PID", 3, 2, 4, 2), "1.2.250.1.213.1.4.8");
        assert_eq!(m.get("PID", 5, 1, 1, 1), "Dupont^Durand", "\\S\\ is ^");
        assert_eq!(m.get("PID", 5, 1, 2, 1), "Jean");
        assert_eq!(m.value("PID", 99), "");
        assert_eq!(m.charset, Charset::Utf8);
    }

    #[test]
    fn segment_separators_and_bom_are_lenient() {
        for sep in ["\r", "\n", "\r\n"] {
            let text = format!("\u{feff}{}", A01.replace('\r', sep));
            let m = Message::parse(text.as_bytes()).unwrap();
            assert_eq!(m.segments.len(), 3, "{sep:?}");
            assert_eq!(m.value("PID", 8), "M");
        }
    }

    #[test]
    fn other_encoding_characters_are_honoured() {
        let m = Message::parse(b"MSH#$*!@#A#B\rPID#1##X$Y*Z@W").unwrap();
        assert_eq!(m.value("MSH", 3), "A");
        assert_eq!(m.get("PID", 3, 1, 2, 1), "Y");
        assert_eq!(m.get("PID", 3, 2, 1, 2), "W");
    }

    #[test]
    fn escapes_resolve() {
        let m =
            Message::parse(b"MSH|^~\\&|A\rNTE|1||a\\F\\b\\T\\c\\R\\d\\E\\e\\X4142\\f\\H\\g\\N\\")
                .unwrap();
        assert_eq!(m.value("NTE", 3), "a|b&c~d\\eABfg");
        let e = Encoding::STANDARD;
        assert_eq!(e.escape("a|b^c~d\\e&f"), "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f");
    }

    #[test]
    fn refusals_name_the_field() {
        let err = |b: &[u8]| Message::parse(b).unwrap_err().field;
        assert_eq!(err(b"hello"), "MSH");
        assert_eq!(err(b"\x00\x01\x02garbage"), "MSH");
        assert_eq!(err(b"MSH"), "MSH-1");
        assert_eq!(err(b"MSH|^^\\&|A"), "MSH-2");
        assert_eq!(err(b"MSHA^~\\&"), "MSH-2");
        assert_eq!(
            err(b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5||||||KOI8-R"),
            "MSH-18"
        );
        assert_eq!(err(b"MSH|^~\\&|A\rTOOLONG|x"), "segment");
    }
}
