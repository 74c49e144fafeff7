//! Peak memory of making and downloading a data export, streamed (as the service does it) and,
//! side by side, the way exports were made before: every training image read into memory, the
//! ZIP built in memory, then stored and read back whole.
//!
//! `cargo bench -p takarir-server --bench export_memory [-- ITEMS MB]` (default 24 items of
//! 16 MB, about what 24 consented 8-megapixel photos weigh as PNG). Needs ONNX Runtime (the
//! service state loads the test fixture model) and writes about 3 × ITEMS × MB to a temporary
//! directory. Peaks are read from /proc (VmHWM, reset before each phase), so Linux only. The
//! streamed phases run first: memory the allocator keeps after a phase can only make a later
//! phase look smaller, so the in-memory figures are, if anything, too low.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use takarir_engine::{Captioner, CaptionerOptions};
use takarir_server::service::privacy::{self, exports};
use takarir_server::{AppState, ServerConfig, Storage};
use takarir_store::training::NewTrainingItem;
use takarir_store::users::{NewUser, Role, User};
use takarir_store::Sensitivity;

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// Runs `phase` and prints its wall time and how far the resident set grew past what it was.
async fn measure<T, F: Future<Output = T>>(name: &str, phase: F) -> T {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak (clear_refs)");
    let before = status_kb("VmRSS:");
    let t = Instant::now();
    let out = phase.await;
    let secs = t.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:");
    println!(
        "{name:<34} {secs:>7.2} s   peak +{:>6.0} MiB",
        (peak.saturating_sub(before)) as f64 / 1024.0
    );
    out
}

/// The export as it was made before it was streamed (same files, same order, same storage).
async fn in_memory_export(state: &AppState, user: &User) -> String {
    use std::io::Write;
    let st = state.storage();
    let doc = privacy::access_document(state, user).await.unwrap();
    let mut files = vec![(
        "data.json".to_string(),
        serde_json::to_vec_pretty(&doc).unwrap(),
    )];
    for item in st.db.training().list(user.id).await.unwrap() {
        let bytes = st.blobs.get(&item.object_path).await.unwrap();
        files.push((format!("training/{}.png", item.id.0), bytes.to_vec()));
    }
    let zip = tokio::task::spawn_blocking(move || {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in &files {
            w.start_file(name.as_str(), opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    })
    .await
    .unwrap();
    let path = format!("users/{}/exports/in-memory.zip", user.id.0);
    st.blobs
        .put(&path, &zip, Sensitivity::Personal)
        .await
        .unwrap();
    path
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let items = args.first().copied().unwrap_or(24);
    let mb = args.get(1).copied().unwrap_or(16);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(items, mb));
}

async fn run(items: usize, mb: usize) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = root.join("fixtures/parity/vit-gpt2-tiny");
    let data = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        model: model.to_string_lossy().into_owned(),
        threads: Some(1),
        data_dir: data.path().to_path_buf(),
        // The request waits for the whole ZIP, so the phase measures all of its making.
        export_wait_seconds: 3600,
        ..ServerConfig::default()
    };
    let storage = Storage::open(&config).await.expect("storage opens");
    let mut o = CaptionerOptions::new(config.model.clone());
    o.threads = 1;
    let captioner = Arc::new(Captioner::load(&o).expect("fixture model loads"));
    let state = AppState::new(config, captioner, storage.clone());
    let user = storage
        .db
        .users()
        .create(NewUser {
            email: "bench@example.org",
            password_hash: "-",
            role: Role::User,
        })
        .await
        .unwrap();
    // Incompressible content, as PNG pixels are to a ZIP.
    let mut image = vec![0u8; mb << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in image.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for i in 0..items {
        let path = format!("users/{}/training/{i}.png", user.id.0);
        storage
            .blobs
            .put(&path, &image, Sensitivity::Personal)
            .await
            .unwrap();
        let new = NewTrainingItem {
            object_path: &path,
            history_id: None,
            caption: "seekor kucing",
            lang: "id",
            format: "png",
        };
        storage.db.training().create(user.id, new).await.unwrap();
    }
    drop(image);
    println!(
        "export of {items} training images of {mb} MiB ({} MiB in all)",
        items * mb
    );

    let (export, token) = measure("streamed: make", exports::create(&state, &user))
        .await
        .unwrap();
    let sent = measure("streamed: download", async {
        let (_, mut body) = exports::by_token(&state, &token).await.unwrap();
        let mut n = 0u64;
        while let Some(piece) = body.next().await {
            n += piece.unwrap().len() as u64;
        }
        n
    })
    .await;
    assert_eq!(export.status, "ready");
    assert_eq!(sent as i64, export.size_bytes);

    let path = measure("in memory (before): make", in_memory_export(&state, &user)).await;
    let whole = measure("in memory (before): download", async {
        // The handler copied the object into the response body.
        storage.blobs.get(&path).await.unwrap().to_vec().len()
    })
    .await;
    println!("ZIP sizes: streamed {sent} bytes, in memory {whole} bytes");
}
