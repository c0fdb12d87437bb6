//! What every server-rendered page needs, whatever its role (dashboard, sign-in): escaping, the
//! reader's language and the words in it ([`words`]), the style sheet and the frame of a page.
//! Pages carry no script and no inline style: the HTTP server's Content-Security-Policy
//! (`http_server.rs`) allows only the style sheet served at [`STYLE_PATH`].
use axum::http::{header, HeaderMap};

mod words;

pub(crate) use words::{channel_label, role_label, t, task_label, timeliness_label};

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The language of a page: French or English.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// The `lang` a link asked for (`fr` or `en`); else the browser's first preference
    /// (`Accept-Language`), French when it starts with `fr`; else English.
    pub fn of(asked: Option<&str>, headers: &HeaderMap) -> Lang {
        match asked {
            Some("fr") => Lang::Fr,
            Some("en") => Lang::En,
            _ => {
                let preferred = headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if preferred
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("fr")
                {
                    Lang::Fr
                } else {
                    Lang::En
                }
            }
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }
}

/// Where the style sheet of every page is served.
pub const STYLE_PATH: &str = "/style.css";

/// The style sheet of every page.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733}\
nav{display:flex;gap:1rem;align-items:center}nav form{margin:0 0 0 auto}\
table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{border-bottom:1px solid #dde3ea;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f6f9}.overdue{color:#b3261e;font-weight:600}.late{color:#8a5300}\
.critical{background:#fde7e9}.high{background:#fff1e0}form{margin:1rem 0;display:flex;gap:.75rem;flex-wrap:wrap;align-items:end}\
label{display:flex;flex-direction:column;font-size:.8rem}.muted{color:#687785;font-size:.85rem}\
.notice{background:#f3f6f9;border-left:4px solid #1565c0;padding:.75rem 1rem;max-width:40rem}\
.refused{border-left-color:#b3261e}\
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}.chart h3{font-size:.9rem;margin:.2rem 0}code{font-size:.8rem;overflow-wrap:anywhere}\
.checklist caption{text-align:left;font-weight:600;padding:.3rem 0}.checklist form{margin:0;gap:.3rem;flex-wrap:nowrap}\
.checklist input{max-width:8rem}label.check{flex-direction:row;font-size:.85rem}\
@media (max-width:40rem){body{margin:.75rem}table{display:block;overflow-x:auto}\
table.planning thead,table.checklist thead{display:none}\
table.planning tr,table.planning td,table.checklist tr,table.checklist td{display:block;border:0;padding:.15rem 0}\
table.planning tr,table.checklist tr{border-bottom:1px solid #dde3ea;padding:.5rem 0}}";

/// A whole page: `title` (already in the reader's words) heads it, `nav` and `body` are markup.
pub fn document(lang: Lang, title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{l}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {app}</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\"></head>\
         <body>{nav}<h1>{title}</h1>{body}</body></html>",
        l = lang.code(),
        title = esc(title),
        app = t(lang, "title"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_asked_wins_then_the_browsers() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(None, &h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            "fr-FR,fr;q=0.9,en;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::of(None, &h), Lang::Fr);
        assert_eq!(Lang::of(Some("en"), &h), Lang::En);
        h.insert(header::ACCEPT_LANGUAGE, "en-GB,fr;q=0.5".parse().unwrap());
        assert_eq!(Lang::of(Some("fr"), &h), Lang::Fr);
        assert_eq!(Lang::of(Some("de"), &h), Lang::En);
    }

    #[test]
    fn a_document_escapes_its_title_and_links_the_style_sheet() {
        let d = document(Lang::Fr, "<x>", "", "<p>b</p>");
        assert!(d.contains("<title>&lt;x&gt; — Parcours patient"), "{d}");
        assert!(d.contains("href=\"/style.css\"") && !d.contains("<style"));
        assert!(d.starts_with("<!doctype html><html lang=\"fr\">"));
    }
}
