//! Just enough of the Chrome DevTools protocol to drive a page: a headless Chromium started
//! with a debugging port, one tab's WebSocket (RFC 6455 text frames, masked from the client),
//! `Page.navigate`, `Runtime.evaluate`, and screenshots at a given size.
//! The dashboard tests share it, and [`shots`] saves a page at desktop and phone widths.
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub struct Browser {
    child: Child,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    pub fn start(profile: &Path) -> Browser {
        let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|c| Path::new(c).exists())
            .expect("Chromium is required for the dashboard test: apt-get install -y chromium (.ci/run does it)");
        std::fs::create_dir_all(profile).unwrap();
        let child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run chromium");
        // Chromium writes the port it chose into the profile.
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.parse().ok()))
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Browser { child, port }
    }

    /// The first page target.
    pub async fn tab(&mut self) -> Tab {
        let list = self.targets().await;
        let url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        Tab::connect(&url).await
    }
}

impl Browser {
    /// DevTools' list of targets (its HTTP server keeps the connection open: the body is
    /// read by its length).
    async fn targets(&self) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let ask = format!(
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        s.write_all(ask.as_bytes()).await.unwrap();
        let head = read_head(&mut s).await;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a content length");
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }
}

/// An HTTP response's head, read byte by byte up to the blank line.
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.unwrap());
    }
    String::from_utf8_lossy(&head).into_owned()
}

pub struct Tab {
    ws: TcpStream,
    next_id: u64,
}

impl Tab {
    async fn connect(url: &str) -> Tab {
        let rest = url.trim_start_matches("ws://");
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut ws = TcpStream::connect(host).await.unwrap();
        let hello = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        ws.write_all(hello.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(ws.read_u8().await.unwrap());
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Tab { ws, next_id: 0 }
    }

    async fn send(&mut self, text: &str) {
        let data = text.as_bytes();
        let mut frame = vec![0x81u8];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.ws.write_all(&frame).await.unwrap();
    }

    /// The next whole text message.
    async fn receive(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let b0 = self.ws.read_u8().await.unwrap();
            let len = match self.ws.read_u8().await.unwrap() & 0x7f {
                126 => u64::from(self.ws.read_u16().await.unwrap()),
                127 => self.ws.read_u64().await.unwrap(),
                n => u64::from(n),
            };
            let mut payload = vec![0; len as usize];
            self.ws.read_exact(&mut payload).await.unwrap();
            if b0 & 0x0f <= 2 {
                message.extend(payload);
                if b0 & 0x80 != 0 {
                    return String::from_utf8(message).unwrap();
                }
            }
        }
    }

    /// Calls `method` and waits for its answer (events on the way are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"id": id, "method": method, "params": params}).to_string())
            .await;
        loop {
            let answer: Value = serde_json::from_str(&self.receive().await).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Waits (at most 30 s) until `condition` holds in the page.
    pub async fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let check = format!("document.readyState === 'complete' && ({condition})");
        while self.eval(&check).await != Value::Bool(true) {
            if Instant::now() > deadline {
                let at = self
                    .eval("location.href + ' ' + document.body.innerText")
                    .await;
                panic!("the page never met {condition}: {at}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(&format!("location.href === {}", json!(url)))
            .await;
    }

    /// Opens the French sign-in page of `base` and signs in with `key`, as a person would; the
    /// caller waits for the page it lands on.
    pub async fn sign_in(&mut self, base: &str, key: &str) {
        self.goto(&format!("{base}/login?lang=fr")).await;
        self.submit_sign_in(key).await;
    }

    /// Fills the sign-in form shown with `key` and sends it.
    pub async fn submit_sign_in(&mut self, key: &str) {
        self.eval(&format!(
            "document.querySelector('input[name=token]').value = '{key}'; \
             document.querySelector('form[method=post]').submit(); true"
        ))
        .await;
    }

    pub async fn html(&mut self) -> String {
        let v = self.eval("document.documentElement.outerHTML").await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The patients of the worklist shown.
    pub async fn rows(&mut self) -> Vec<String> {
        let v = self
            .eval("[...document.querySelectorAll('#worklist tr[data-patient-id]')].map(r => r.dataset.patientId)")
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    /// A PNG of the page at `width` × `height` CSS pixels (a phone when `mobile`).
    pub async fn screenshot(&mut self, width: u32, height: u32, mobile: bool) -> Vec<u8> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        base64(shot["data"].as_str().unwrap())
    }
}

/// Standard base64, as DevTools sends images.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Screenshots of the tab's page at desktop and phone widths, under `target/`.
pub async fn shots(tab: &mut Tab, name: &str) {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&target).unwrap();
    for (width, height, mobile, suffix) in
        [(1400, 900, false, "desktop"), (400, 800, true, "phone")]
    {
        let png = tab.screenshot(width, height, mobile).await;
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        std::fs::write(target.join(format!("{name}-{suffix}.png")), png).unwrap();
    }
}
