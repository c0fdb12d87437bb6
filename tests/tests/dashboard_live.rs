//! The worklist keeps itself up to date (issue 18, point 5) against a secure `journey up`: the
//! view's position as server-sent events (at most one every 3 s, several moves meanwhile one)
//! and the list alone, both behind the session and the list recorded as the page is; a stream
//! open ends when the server stops, without holding it up; then in a real headless Chromium under the server's
//! Content-Security-Policy: the title carries the count of overdue items, and a contact recorded
//! through gRPC takes the patient off the overdue list without a reload, the count going down
//! with it. Screenshots of the worklist, the search and the page to print in French and English
//! at desktop and phone widths under `target/screenshots/`.
use journey_proto::v1::{self, event::Payload};
use journey_tests::cdp::{shots, Browser};
use journey_tests::dashboard::{get, load, secure_node, session, stay, COORDINATOR, KEYS};
use journey_tests::*;
use std::path::Path;
use std::time::Duration;

/// A secure node with PA and PB of T1, each with a first contact overdue, and PC of T1 whose
/// contact is made: appended and projected.
async fn node(dir: &Path) -> (Server, String) {
    let (server, admin) = secure_node(dir, KEYS, &["--no-reactor"]);
    let mut events = Vec::new();
    for (id, family, born, ins) in [
        ("PA", "Arnaud", "1940-01-15", "240017512345601"),
        ("PB", "Bernard", "1936-08-02", "236087512345602"),
        ("PC", "Colin", "1951-11-23", "251117512345603"),
    ] {
        events.push(event(
            id,
            ts(40 * 86_400),
            Payload::PatientRegistered(v1::PatientRegistered {
                family_name: family.into(),
                given_name: "Louise".into(),
                birth_date: born.into(),
                sex: v1::Sex::Female as i32,
                local_id: format!("IPP-{id}"),
                ins: ins.into(),
                identity_status: v1::IdentityStatus::Validated as i32,
                ..Default::default()
            }),
        ));
        events.extend(stay(id, ("F1", "T1"), "cardio", 10));
    }
    events.push(contact("PC"));
    load(&server, &admin, events).await;
    (server, admin)
}

/// A phone call to `patient` now.
fn contact(patient: &str) -> v1::Event {
    event(
        patient,
        ts(0),
        Payload::ContactMade(v1::ContactMade {
            channel: v1::ContactChannel::Phone as i32,
            ..Default::default()
        }),
    )
}

/// A stream of server-sent events being read: the head of the answer, then the data of each
/// event as it comes, with when it came.
struct EventStream {
    socket: tokio::net::TcpStream,
    text: String,
    head: String,
}

impl EventStream {
    async fn open(base: &str, path: &str, cookie: &str) -> EventStream {
        use tokio::io::AsyncWriteExt;
        let addr = base.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let ask = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}\r\n");
        socket.write_all(ask.as_bytes()).await.unwrap();
        let mut s = EventStream {
            socket,
            text: String::new(),
            head: String::new(),
        };
        while !s.text.contains("\r\n\r\n") {
            s.read_more().await;
        }
        let (head, rest) = s.text.split_once("\r\n\r\n").unwrap();
        (s.head, s.text) = (head.to_string(), rest.to_string());
        s
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(20), self.socket.read(&mut buf))
            .await
            .expect("more within 20 s")
            .unwrap();
        assert!(n > 0, "closed: {}", self.text);
        self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }

    /// Whether the stream ends (the connection closed) within `within`.
    async fn ends(&mut self, within: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The next event's data.
    async fn next(&mut self) -> (std::time::Instant, String) {
        loop {
            if let Some(at) = self.text.find("data: ") {
                let rest = &self.text[at + "data: ".len()..];
                if let Some(end) = rest.find('\n') {
                    let data = rest[..end].trim().to_string();
                    self.text = rest[end..].to_string();
                    return (std::time::Instant::now(), data);
                }
            }
            self.read_more().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_s_position_and_the_list_behind_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, admin) = node(dir.path()).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;

    // Without a session: the sign-in, nothing streamed.
    let r = get(base, "/live/events", "").await;
    assert_eq!(http_status(&r), 303, "{r}");
    let r = get(base, "/live/worklist?overdue=on", "").await;
    assert_eq!(http_status(&r), 303, "{r}");

    // With one: the position the view has reached, then where it moves, at most one event every
    // 3 s (several moves meanwhile are one).
    let head = journey_tests::dashboard::head(&server.grpc, &admin).await;
    let mut events = EventStream::open(base, "/live/events", &cookie).await;
    assert!(events.head.starts_with("HTTP/1.1 200"), "{}", events.head);
    assert!(
        http_header(&events.head, "content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{}",
        events.head
    );
    let (mut last, first) = events.next().await;
    assert_eq!(first, head.to_string());
    let mut log = client::connect(&server.grpc, Some(&admin)).await.unwrap();
    for _ in 0..3 {
        append_batch(&mut log, vec![contact("PC")]).await;
    }
    let mut seen = Vec::new();
    while seen.last() != Some(&(head + 3).to_string()) {
        let (at, position) = events.next().await;
        assert!(
            at - last >= Duration::from_millis(2900),
            "{:?} after the one before",
            at - last
        );
        last = at;
        seen.push(position);
    }
    assert!(seen.len() <= 3, "{seen:?}");
    let head = head + 3;

    // The list alone, as the page shows it: its count of overdue items and its position.
    let list = get(base, "/live/worklist?lang=fr&overdue=on", &cookie).await;
    assert_eq!(http_status(&list), 200, "{list}");
    let body = http_body(&list);
    assert!(
        body.starts_with(&format!(
            "<div id=\"list\" data-position=\"{head}\" data-overdue=\"2\">"
        )),
        "{body}"
    );
    assert!(
        body.contains("data-patient-id=\"PA\"") && !body.contains("<nav"),
        "{body}"
    );
    // Without the overdue filter the count is still of the overdue items.
    let all = get(base, "/live/worklist?lang=fr", &cookie).await;
    assert!(http_body(&all).contains("data-overdue=\"2\""), "{all}");
    assert!(http_body(&all).contains("data-patient-id=\"PC\""), "{all}");
    let bad = get(base, "/live/worklist?colour=red", &cookie).await;
    assert_eq!(http_status(&bad), 400, "{bad}");

    // The script is a same-origin file the policy allows; no page carries an inline one.
    let script = get(base, "/live.js", "").await;
    assert_eq!(http_status(&script), 200);
    assert!(http_header(&script, "content-type")
        .unwrap()
        .starts_with("text/javascript"));
    let csp = http_header(&script, "content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let page = get(base, "/?lang=fr", &cookie).await;
    assert!(
        page.contains("<script src=\"/live.js\" defer></script>"),
        "{page}"
    );

    // A stream open does not hold up a stopping server: it ends with it.
    let started = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "stopped in {:?} (the HTTP server waits 5 s for what is still open)",
        started.elapsed()
    );
    assert!(events.ends(Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_contact_recorded_elsewhere_takes_the_row_away_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path()).await;
    let base = &server.http;
    let mut browser = Browser::start(&dir.path().join("chromium"));
    let mut tab = browser.tab().await;
    tab.sign_in(base, COORDINATOR).await;
    tab.wait_for("document.querySelector('#worklist') !== null")
        .await;

    // The overdue list: PA and PB, "(2)" in the title.
    tab.goto(&format!("{base}/?overdue=on&lang=fr")).await;
    tab.wait_for("document.title.startsWith('(2) Liste de travail')")
        .await;
    assert_eq!(tab.rows().await, ["PA", "PB"]);
    shots(&mut tab, "dashboard-live-before-fr").await;

    // A contact with PB recorded elsewhere (through gRPC): the row goes, the count with it, and
    // the page is the same page (what was set on it is still there).
    tab.eval("window.stillHere = true; true").await;
    let mut log = client::connect(&server.grpc, Some(&admin)).await.unwrap();
    append_batch(&mut log, vec![contact("PB")]).await;
    tab.wait_for("document.title.startsWith('(1) Liste de travail')")
        .await;
    assert_eq!(tab.rows().await, ["PA"]);
    assert_eq!(
        tab.eval("window.stillHere === true").await,
        true,
        "no reload"
    );
    shots(&mut tab, "dashboard-live-after-fr").await;

    // The last one: no count in the title.
    append_batch(&mut log, vec![contact("PA")]).await;
    tab.wait_for("document.title === 'Liste de travail — Parcours patient — coordination'")
        .await;
    assert!(tab.rows().await.is_empty());
    assert_eq!(
        tab.eval("window.stillHere === true").await,
        true,
        "no reload"
    );

    // The other pages of this point, for the eye: in English the whole worklist, the search,
    // the page to print.
    tab.goto(&format!("{base}/?lang=en")).await;
    tab.wait_for("document.querySelector('#list') !== null")
        .await;
    shots(&mut tab, "dashboard-worklist-live-en").await;
    tab.goto(&format!("{base}/search?lang=fr&q=louise")).await;
    assert_eq!(
        tab.eval("document.querySelectorAll('#found tr[data-patient-id]').length")
            .await,
        3
    );
    shots(&mut tab, "dashboard-search-fr").await;
    tab.goto(&format!("{base}/search?lang=en&q=bernard")).await;
    shots(&mut tab, "dashboard-search-en").await;
    tab.goto(&format!("{base}/?lang=fr&print=1")).await;
    assert_eq!(
        tab.eval("document.querySelector('nav') === null").await,
        true
    );
    shots(&mut tab, "dashboard-print-fr").await;
    tab.goto(&format!("{base}/?lang=en&print=1")).await;
    shots(&mut tab, "dashboard-print-en").await;
    // On paper (the print style sheet), even the worklist itself loses its navigation and forms.
    tab.goto(&format!("{base}/?lang=fr")).await;
    tab.call(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": "print"}),
    )
    .await;
    for hidden in ["nav", "#search", "#filters", "#take-away"] {
        let display = format!("getComputedStyle(document.querySelector('{hidden}')).display");
        assert_eq!(tab.eval(&display).await, "none", "{hidden}");
    }
    assert_eq!(tab.rows().await.len(), 3);
    shots(&mut tab, "dashboard-worklist-on-paper-fr").await;
}
