//! What every server-rendered page needs, whatever its role (dashboard, sign-in): escaping, the
//! reader's language and the words in it ([`words`]), the style sheet and the frame of a page.
//! Pages carry no inline script or style: the HTTP server's Content-Security-Policy
//! (`http_server.rs`) allows only the style sheet served at [`STYLE_PATH`] and script files of
//! the same server (the worklist's, `dashboard/live.rs`).
use axum::http::{header, HeaderMap};

mod words;

pub(crate) use words::{channel_label, role_label, t, task_label, timeliness_label};

/// Percent-encodes a URL's query value: every byte but the unreserved ones (letters, digits,
/// `-_.~`).
pub fn enc(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, RESERVED).to_string()
}

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
    /// The `lang` a link asked for (`fr` or `en`); else the language chosen last in this browser
    /// (the [`LANG_COOKIE`] the pages set when a link asks for one); else French, the language of
    /// the people the pages are for (a browser's own preference is not a choice its user made).
    pub fn of(asked: Option<&str>, headers: &HeaderMap) -> Lang {
        let asked = asked.filter(|a| matches!(*a, "fr" | "en"));
        match asked.or_else(|| chosen(headers)) {
            Some("en") => Lang::En,
            _ => Lang::Fr,
        }
    }

    /// [`Lang::of`] the `lang` of a request's query.
    pub fn of_request(uri: &axum::http::Uri, headers: &HeaderMap) -> Lang {
        Lang::of(asked_lang(uri), headers)
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }
}

/// The cookie keeping the language a reader chose (`fr` or `en`), so that a page reached without
/// `?lang=` (a bookmark, the sign-in's redirect) speaks it too.
pub const LANG_COOKIE: &str = "journey_lang";

/// The language the browser's [`LANG_COOKIE`] names.
fn chosen(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, LANG_COOKIE).filter(|v| matches!(*v, "fr" | "en"))
}

/// The first non-empty value of the cookie `name` the request carries.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value remembering `lang` for a year (sent back to this server only; no
/// script reads it).
pub fn lang_cookie(lang: Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; HttpOnly; Path=/; SameSite=Lax; Max-Age=31536000",
        lang.code()
    )
}

/// Where the style sheet of every page is served.
pub const STYLE_PATH: &str = "/style.css";

/// The style sheet of every page. Text colours keep at least 4.5:1 against every background they
/// sit on (white, the highlighted rows, the notices; see the test below). On a phone the worklist
/// is a list of cards, each cell under its heading's name (`data-label`), and wide tables scroll
/// inside their own box, so that the page itself never scrolls sideways. On paper (the worklist
/// printed for the morning huddle) navigation, forms and links' colours go, rows do not break
/// across pages and the highlighted rows keep a left border instead of a background.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733}\
nav{display:flex;gap:.5rem 1rem;align-items:center;flex-wrap:wrap}nav form{margin:0 0 0 auto}\
table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{border-bottom:1px solid #dde3ea;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f6f9}.overdue{color:#b3261e;font-weight:600}.late{color:#8a5300}\
.critical{background:#fde7e9}.high{background:#fff1e0}form{margin:1rem 0;display:flex;gap:.75rem;flex-wrap:wrap;align-items:end}\
label{display:flex;flex-direction:column;font-size:.8rem}.muted{color:#56636f;font-size:.85rem}.phone,.ins,.born{white-space:nowrap}\
.notice{background:#f3f6f9;border-left:4px solid #1565c0;padding:.75rem 1rem;max-width:40rem}\
.refused{border-left-color:#b3261e}\
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}.chart{margin:0;max-width:100%}.chart figcaption{font-size:.9rem;font-weight:600;margin:.2rem 0}\
.chart svg{max-width:100%;height:auto}.legend{font-size:.8rem;margin:.2rem 0}.wide{max-width:100%;overflow-x:auto}\
code{font-size:.8rem;overflow-wrap:anywhere}input,select,textarea{max-width:100%}#search input{width:20rem}\
.checklist caption{text-align:left;font-weight:600;padding:.3rem 0}.checklist form{margin:0;gap:.3rem;flex-wrap:nowrap}\
.checklist input{max-width:8rem}label.check{flex-direction:row;font-size:.85rem}\
@media (max-width:40rem){body{margin:.75rem}table{display:block;overflow-x:auto}\
#worklist,#followup{display:block;overflow:visible}#worklist thead,#followup thead{display:none}\
#worklist tbody,#worklist tr,#worklist td,#followup tbody,#followup tr,#followup td{display:block}\
#worklist tr,#followup tr{border-bottom:1px solid #dde3ea;padding:.5rem 0}#worklist td,#followup td{border:0;padding:.1rem 0}\
#worklist td[data-label]:not(:first-child)::before,#followup td[data-label]:not(:first-child)::before\
{content:attr(data-label) \"\\a0: \";font-weight:600;font-size:.8rem}\
html:lang(en) #worklist td[data-label]:not(:first-child)::before,html:lang(en) #followup td[data-label]:not(:first-child)::before{content:attr(data-label) \": \"}\
table.planning thead,table.checklist thead{display:none}\
table.planning tr,table.planning td,table.checklist tr,table.checklist td{display:block;border:0;padding:.15rem 0}\
table.planning tr,table.checklist tr{border-bottom:1px solid #dde3ea;padding:.5rem 0}\
table.roster td[data-label]:not(:first-child)::before{content:attr(data-label) \"\\a0: \";font-weight:600;font-size:.8rem}\
html:lang(en) table.roster td[data-label]:not(:first-child)::before{content:attr(data-label) \": \"}}\
@media print{html{font-size:9pt}body{margin:0;color:#000}nav,form,#take-away,#back{display:none}\
a{color:inherit;text-decoration:none}tr{break-inside:avoid}th{background:none}\
.critical,.high{background:none}.critical td:first-child{border-left:4px solid #b3261e}\
.high td:first-child{border-left:4px solid #8a5300}.muted{color:#333}h1{font-size:1.6rem;margin:0 0 .3rem}}";

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

/// The `lang=` of a request's query, as it is.
fn asked_lang(uri: &axum::http::Uri) -> Option<&str> {
    uri.query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_asked_wins_then_the_one_chosen_then_french() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(None, &h), Lang::Fr);
        h.insert(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9".parse().unwrap());
        assert_eq!(
            Lang::of(None, &h),
            Lang::Fr,
            "the browser's default is no choice"
        );
        assert_eq!(Lang::of(Some("en"), &h), Lang::En);
        h.insert(header::COOKIE, "a=1; journey_lang=en".parse().unwrap());
        assert_eq!(Lang::of(None, &h), Lang::En);
        assert_eq!(Lang::of(Some("fr"), &h), Lang::Fr);
        assert_eq!(
            Lang::of(Some("de"), &h),
            Lang::En,
            "an unknown ask falls back to the choice"
        );
        h.insert(header::COOKIE, "journey_lang=de".parse().unwrap());
        assert_eq!(Lang::of(None, &h), Lang::Fr);
        assert_eq!(
            lang_cookie(Lang::En),
            "journey_lang=en; HttpOnly; Path=/; SameSite=Lax; Max-Age=31536000"
        );
    }

    #[test]
    fn a_document_escapes_its_title_and_links_the_style_sheet() {
        let d = document(Lang::Fr, "<x>", "", "<p>b</p>");
        assert!(d.contains("<title>&lt;x&gt; — Parcours patient"), "{d}");
        assert!(d.contains("href=\"/style.css\"") && !d.contains("<style"));
        assert!(d.starts_with("<!doctype html><html lang=\"fr\">"));
    }
}
