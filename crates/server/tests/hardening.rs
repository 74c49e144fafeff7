//! Attacks a hostile client can make on the service's capacity, reproduced against the real
//! server on a random port: slow uploads, unfinished headers, piles of connections, refused
//! requests that would spend the client's rate limit. Clients bind to distinct loopback
//! addresses (127.0.0.x) so that per-client limits see distinct clients.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
mod common;
use common::{sample, Backend, TestServer};
use takarir_server::ServerConfig;

async fn start(edit: impl FnOnce(&mut ServerConfig)) -> TestServer {
    TestServer::start(Backend::from_env(), edit).await
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to the server from 127.0.0.`from`.
async fn connect_from(base: &str, from: u8) -> TcpStream {
    let addr = base.trim_start_matches("http://").parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(std::net::SocketAddr::new(ip(from), 0)).unwrap();
    sock.connect(addr).await.unwrap()
}

/// A client whose connections come from 127.0.0.`from`.
fn client_from(from: u8) -> Client {
    Client::builder()
        .local_address(ip(from))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// An upload that sends its headers, then one byte of its body every `every` until the server
/// answers or closes; what the server answered (empty when it only closed).
fn trickle(base: &str, from: u8, every: Duration) -> tokio::task::JoinHandle<String> {
    let base = base.to_string();
    tokio::spawn(async move {
        let mut c = connect_from(&base, from).await;
        let head = "POST /api/v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n\
             Content-Length: 100000\r\nAccept-Language: en\r\n\r\n";
        c.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                n = c.read(&mut buf) => {
                    let n = n.unwrap_or(0);
                    return String::from_utf8_lossy(&buf[..n]).into_owned();
                }
                _ = tokio::time::sleep(every) => {
                    if c.write_all(b"P").await.is_err() {
                        let n = c.read(&mut buf).await.unwrap_or(0);
                        return String::from_utf8_lossy(&buf[..n]).into_owned();
                    }
                }
            }
        }
    })
}

async fn caption(client: &Client, s: &TestServer) -> reqwest::Response {
    let form = Form::new().part(
        "image",
        Part::bytes(sample("rocket.jpg")).file_name("a.jpg"),
    );
    client
        .post(s.url("/api/v1/captions"))
        .header("accept-language", "en")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Row 1 of the hardening issue: four uploads trickled at one byte a second used to hold all
/// four inference places (503 for everyone else). Now an honest client gets its caption within
/// 5 s, a fifth trickle from the same address is refused at once, and the trickles are cut off
/// (408) once they fall behind the minimum rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_uploads_do_not_hold_inference_places() {
    let s = start(|c| {
        c.upload_grace_seconds = 4;
        c.queue_capacity = 4;
        c.max_uploads_per_client = 4;
    })
    .await;
    let started = Instant::now();
    let slow: Vec<_> = (0..4)
        .map(|_| trickle(&s.base, 2, Duration::from_secs(1)))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A fifth from the same address: refused at once, its client's places are all taken.
    let fifth = tokio::time::timeout(
        Duration::from_secs(5),
        trickle(&s.base, 2, Duration::from_secs(1)),
    )
    .await
    .expect("answered at once")
    .unwrap();
    assert!(fifth.starts_with("HTTP/1.1 503"), "{fifth}");
    // The honest client, while the trickles are all still within their grace period.
    let honest = client_from(1);
    let t = Instant::now();
    let res = caption(&honest, &s).await;
    let took = t.elapsed();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(!body["captions"][0]["text"].as_str().unwrap().is_empty());
    assert!(took < Duration::from_secs(5), "caption took {took:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "within the grace"
    );
    // The trickles are cut off soon after their grace: 408 upload_timeout.
    for t in slow {
        let answer = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("cut off")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("upload_timeout"), "{answer}");
    }
    let cut = started.elapsed();
    assert!(cut < Duration::from_secs(9), "cut off after {cut:?}");
    let health: serde_json::Value = s.get("/api/v1/health").await.json().await.unwrap();
    assert_eq!(health["queue_in_use"], 0);
    s.stop().await;
}

/// Row 8: a connection that never finishes its headers is closed after
/// `header_read_timeout_seconds`, instead of holding a file descriptor for ever.
#[tokio::test]
async fn unfinished_headers_are_closed() {
    let s = start(|c| c.header_read_timeout_seconds = 1).await;
    let mut c = connect_from(&s.base, 1).await;
    c.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("closed within the timeout")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "closed, not answered: {answer}"
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    // The server still serves.
    assert_eq!(s.get("/api/v1/health").await.status(), StatusCode::OK);
    s.stop().await;
}

/// Row 8: one address cannot hold more than `max_connections_per_client` connections; others
/// are still served.
#[tokio::test]
async fn connections_per_client_are_capped() {
    let s = start(|c| c.max_connections_per_client = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&s.base, 3).await);
    }
    // Give the server a moment to accept them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect_from(&s.base, 3).await;
    let _ = extra
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
    // Another address is served meanwhile.
    let other = client_from(4);
    let res = other.get(s.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The held ones still work, and once one closes the address may connect again.
    let mut first = held.remove(0);
    first
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    drop(first);
    let again = client_from(3);
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = again.get(s.url("/api/v1/health")).send().await {
            ok = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a freed place is usable again");
    drop(held);
    s.stop().await;
}

/// Row 9: a request refused as busy (503) does not spend the client's rate-limit token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_refusals_cost_no_rate_limit_token() {
    let s = start(|c| {
        c.rate_limit_per_minute = 3;
        c.max_concurrent_uploads = 1;
    })
    .await;
    // Another client holds the only upload place.
    let slow = trickle(&s.base, 2, Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let honest = client_from(1);
    for _ in 0..4 {
        let res = caption(&honest, &s).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    slow.abort();
    // Once the place is free (503 again until then, which costs nothing), three captions go
    // through: the full budget, untouched by the four refusals.
    let mut ok = 0;
    for _ in 0..100 {
        let res = caption(&honest, &s).await;
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("unexpected {other} after {ok} captions"),
        }
        if ok == 3 {
            break;
        }
    }
    assert_eq!(ok, 3);
    let res = caption(&honest, &s).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
}

/// A real 1×`height` RGB PNG of one grey, tiny on the wire: its zlib stream is written by hand
/// (fixed-Huffman deflate, one 4-byte row then back-references), so the test needs no
/// compressor and no stored file.
fn tall_png(height: u32) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        // Deflate packs values LSB first; Huffman codes go MSB first, so they are reversed.
        fn put(&mut self, value: u64, len: u32) {
            self.acc |= value << self.n;
            self.n += len;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        fn code(&mut self, code: u64, len: u32) {
            let rev = (0..len).fold(0, |r, i| r | ((code >> i) & 1) << (len - 1 - i));
            self.put(rev, len);
        }
        fn literal(&mut self, b: u8) {
            self.code(0x30 + b as u64, 8); // literals 0..=143: 8-bit codes from 0x30
        }
    }
    let row = [0u8, 0x80, 0x80, 0x80]; // filter "none", one grey pixel
    let total = 4 * height as u64;
    let mut z = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    z.put(1, 1); // final block
    z.put(1, 2); // fixed Huffman codes
    for b in row {
        z.literal(b);
    }
    let mut done = 4u64;
    while total - done >= 258 {
        z.code(0xC5, 8); // length 258 (code 285)
        z.code(3, 5); // distance 4 (code 3)
        done += 258;
    }
    while done < total {
        z.literal(row[(done % 4) as usize]);
        done += 1;
    }
    z.code(0, 7); // end of block
    if z.n > 0 {
        z.out.push(z.acc as u8);
    }
    // Adler-32 of the raw rows.
    let (mut a, mut b) = (1u64, 0u64);
    for i in 0..total {
        a = (a + row[(i % 4) as usize] as u64) % 65521;
        b = (b + a) % 65521;
    }
    z.out
        .extend_from_slice(&(((b << 16) | a) as u32).to_be_bytes());
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = 1u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &z.out));
    png.extend(chunk(b"IEND", b""));
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Row 2: a 1×39,999,999 PNG (under the 40-megapixel limit) used to take ~4 s and ~900 MB.
/// It is refused from its header, at once, with 413 `image_too_large` in the user's language;
/// in a batch and in a job it is one item's error and the others are captioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tall_png_is_refused_by_its_memory_estimate() {
    let s = start(|_| {}).await;
    let png = tall_png(39_999_999);
    assert!(png.len() < 2_000_000, "{} bytes", png.len());
    // The file is a real, complete image: a small one made the same way decodes.
    let small = image::load_from_memory(&tall_png(10)).expect("valid PNG");
    assert_eq!((small.width(), small.height()), (1, 10));
    let client = client_from(1);
    let part = |bytes: Vec<u8>, name: &str| {
        Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str("image/png")
            .unwrap()
    };
    for (lang, needle) in [("id", "memori"), ("en", "memory")] {
        let t = Instant::now();
        let res = client
            .post(s.url("/api/v1/captions"))
            .header("accept-language", lang)
            .multipart(Form::new().part("image", part(png.clone(), "tall.png")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "image_too_large", "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("1×39999999") && detail.contains(needle),
            "{detail}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    // In a batch: that item's error; the other image is captioned.
    let form = Form::new()
        .part("image", part(png.clone(), "tall.png"))
        .part(
            "image",
            Part::bytes(sample("rocket.jpg")).file_name("rocket.jpg"),
        );
    let res = client
        .post(s.url("/api/v1/captions"))
        .header("accept-language", "en")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["results"][0]["error"]["code"], "image_too_large",
        "{body}"
    );
    assert!(
        body["results"][1]["captions"][0]["text"].is_string(),
        "{body}"
    );
    // In a job: the same, per item.
    let form = Form::new().part("files", part(png, "tall.png")).part(
        "files",
        Part::bytes(sample("rocket.jpg")).file_name("rocket.jpg"),
    );
    let created: serde_json::Value = client
        .post(s.url("/api/v1/jobs"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("job id").to_string();
    common::wait_done(&client, &s.base, &id).await;
    let lines = client
        .get(s.url(&format!("/api/v1/jobs/{id}/results")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let items: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 2, "{lines}");
    let tall = items.iter().find(|i| i["file"] == "tall.png").unwrap();
    assert_eq!(tall["error"]["code"], "image_too_large", "{tall}");
    let rocket = items.iter().find(|i| i["file"] == "rocket.jpg").unwrap();
    assert!(rocket["error"].is_null(), "{rocket}");
    s.stop().await;
}

/// A ZIP archive storing `entries` as they are (no compression), names allowed to repeat,
/// which the `zip` crate's writer refuses to make.
fn stored_zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let len = data.len() as u32;
        let mut head = b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
        for v in [crc, len, len] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend_from_slice(&(name.len() as u16).to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        out.extend(head);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        for v in [crc, len, len] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0u8; 12]); // extra, comment, disk, attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend(central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let n = entries.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Row 12: two entries named alike in one ZIP used to be dropped to one, silently. Now every
/// entry of a repeated name is an item error (`duplicate_archive_name`, in the request's
/// language) and the rest of the archive is captioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_zip_entry_names_are_item_errors() {
    let s = start(|_| {}).await;
    let zip = stored_zip(&[
        ("foto.jpg", sample("rocket.jpg")),
        ("foto.jpg", sample("coffee.jpg")),
        ("lain.jpg", sample("chelsea.jpg")),
    ]);
    let client = client_from(1);
    let form = Form::new().part("archive", Part::bytes(zip).file_name("album.zip"));
    let res = client
        .post(s.url("/api/v1/jobs"))
        .header("accept-language", "id")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let created: serde_json::Value = res.json().await.unwrap();
    assert_eq!(created["total"], 3, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    common::wait_done(&client, &s.base, &id).await;
    let lines = client
        .get(s.url(&format!("/api/v1/jobs/{id}/results")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let items: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items.len(), 3, "{lines}");
    let dup: Vec<_> = items.iter().filter(|i| i["file"] == "foto.jpg").collect();
    assert_eq!(dup.len(), 2, "{lines}");
    for d in dup {
        assert_eq!(d["error"]["code"], "duplicate_archive_name", "{d}");
        assert!(d["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("nama yang sama"));
    }
    let other = items.iter().find(|i| i["file"] == "lain.jpg").unwrap();
    assert!(other["captions"][0]["text"].is_string(), "{other}");
    s.stop().await;
}
