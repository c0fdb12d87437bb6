//! The character sets MSH-18 may name: ASCII, ISO 8859-1, ISO 8859-15 (the French senders'
//! default: €, œ, Œ, Ÿ) and UTF-8. Two tables of eight differences, by hand: the field's norm.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
    Latin9,
}

/// The eight code points where 8859-15 differs from 8859-1.
const LATIN9: [(u8, char); 8] = [
    (0xA4, '€'),
    (0xA6, 'Š'),
    (0xA8, 'š'),
    (0xB4, 'Ž'),
    (0xB8, 'ž'),
    (0xBC, 'Œ'),
    (0xBD, 'œ'),
    (0xBE, 'Ÿ'),
];

impl Charset {
    /// The set MSH-18 names. Without MSH-18 (ASCII by the standard), UTF-8 when the bytes are
    /// UTF-8, else 8859-1: a sender that forgot MSH-18 is read rather than refused.
    pub fn named(msh18: &str, bytes: &[u8]) -> Option<Charset> {
        Some(match msh18.trim().to_ascii_uppercase().as_str() {
            "" | "ASCII" => match std::str::from_utf8(bytes) {
                Ok(_) => Charset::Utf8,
                Err(_) => Charset::Latin1,
            },
            "UNICODE UTF-8" | "UTF-8" | "UTF8" => Charset::Utf8,
            "8859/1" => Charset::Latin1,
            "8859/15" => Charset::Latin9,
            _ => return None,
        })
    }

    /// The name MSH-18 of an answer gives (the request's own).
    pub fn msh18(self) -> &'static str {
        match self {
            Charset::Utf8 => "UNICODE UTF-8",
            Charset::Latin1 => "8859/1",
            Charset::Latin9 => "8859/15",
        }
    }

    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Latin1 => bytes.iter().map(|b| *b as char).collect(),
            Charset::Latin9 => bytes
                .iter()
                .map(|b| {
                    LATIN9
                        .iter()
                        .find(|(code, _)| code == b)
                        .map_or(*b as char, |(_, c)| *c)
                })
                .collect(),
        }
    }

    /// The bytes of `text` in this set; a character the set lacks becomes `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Latin1 | Charset::Latin9 => text
                .chars()
                .map(|c| {
                    if self == Charset::Latin9 {
                        if let Some((b, _)) = LATIN9.iter().find(|(_, l)| *l == c) {
                            return *b;
                        }
                        if LATIN9.iter().any(|(b, _)| u32::from(*b) == u32::from(c)) {
                            return b'?';
                        }
                    }
                    u8::try_from(u32::from(c)).unwrap_or(b'?')
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin9_has_the_euro_and_the_oe() {
        let bytes = [b'c', 0xE9, b' ', 0xBD, b' ', 0xA4, b' ', 0xBC];
        assert_eq!(Charset::Latin9.decode(&bytes), "cé œ € Œ");
        assert_eq!(Charset::Latin1.decode(&bytes), "cé ½ ¤ ¼");
        assert_eq!(Charset::Latin9.encode("cé œ € Œ"), bytes);
        assert_eq!(Charset::Latin9.encode("¤ 漢"), b"? ?");
    }

    #[test]
    fn names() {
        assert_eq!(Charset::named("8859/15", b""), Some(Charset::Latin9));
        assert_eq!(Charset::named("unicode utf-8", b""), Some(Charset::Utf8));
        assert_eq!(Charset::named("", b"caf\xE9"), Some(Charset::Latin1));
        assert_eq!(Charset::named("", "café".as_bytes()), Some(Charset::Utf8));
        assert_eq!(Charset::named("ISO IR87", b""), None);
    }
}
