//! Every object-store test runs twice: on a local directory and on a real S3-compatible server
//! (moto, started by `scripts/test-services`, named by TAKARIR_TEST_S3_ENDPOINT). Without that
//! variable the S3 half fails; it is never skipped.

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use takarir_store::test_support::{put_stored_bytes, stored_bytes};
use takarir_store::{Blobs, Error, KeyRing, Sensitivity};

const S3_ENV: &str = "TAKARIR_TEST_S3_ENDPOINT";
const BUCKET_ENV: &str = "TAKARIR_TEST_S3_BUCKET";

const KEY1: [u8; 32] = [1; 32];
const KEY2: [u8; 32] = [2; 32];
const PHOTO: &[u8] =
    b"\xff\xd8\xff\xe0 pretend JPEG of someone's face, personal data, personal data";

/// Where a test's objects live: a fresh local directory, or a fresh prefix in the S3 bucket.
struct Place {
    url: String,
    /// Local only: the directory, to look at the files on disk.
    dir: Option<tempfile::TempDir>,
}

impl Place {
    fn local() -> Place {
        let dir = tempfile::tempdir().unwrap();
        Place {
            url: format!("file://{}", dir.path().display()),
            dir: Some(dir),
        }
    }

    fn s3() -> Place {
        let endpoint = std::env::var(S3_ENV).unwrap_or_else(|_| {
            panic!(
                "{S3_ENV} is not set: the S3 tests need an S3-compatible server. Run them through \
                 scripts/test, or `scripts/test-services cargo test -p takarir-store`, or \
                 `source scripts/test-services` first"
            )
        });
        let bucket = std::env::var(BUCKET_ENV).unwrap_or_else(|_| "takarir-test".into());
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
        );
        // Explicit dummy credentials and region: nothing is looked up anywhere else.
        Place {
            url: format!(
                "s3://{bucket}/{prefix}?endpoint={endpoint}&region=us-east-1&allow_http=true\
                 &access_key_id=test&secret_access_key=test"
            ),
            dir: None,
        }
    }

    fn blobs(&self, keys: &KeyRing) -> Blobs {
        Blobs::open(&self.url, keys.clone()).unwrap()
    }
}

fn ring1() -> KeyRing {
    KeyRing::new().with_key("k1", &KEY1).unwrap()
}

/// The stored (raw) bytes of an object, read past the encryption layer.
async fn raw(blobs: &Blobs, path: &str) -> Vec<u8> {
    stored_bytes(blobs, path).await
}

async fn put_raw(blobs: &Blobs, path: &str, bytes: Vec<u8>) {
    put_stored_bytes(blobs, path, bytes).await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `both_stores!(name, |place| { body })` defines `name::local` and `name::s3`.
macro_rules! both_stores {
    ($name:ident, |$place:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn local() {
                let $place = Place::local();
                $body
            }

            #[tokio::test]
            async fn s3() {
                let $place = Place::s3();
                $body
            }
        }
    };
}

both_stores!(round_trip_personal_and_public, |place| {
    let blobs = place.blobs(&ring1());
    let info = blobs
        .put("users/1/training/a.jpg", PHOTO, Sensitivity::Personal)
        .await
        .unwrap();
    assert_eq!(info.sensitivity, Sensitivity::Personal);
    assert_eq!(info.key_id.as_deref(), Some("k1"));
    blobs
        .put("public/readme.txt", b"hello", Sensitivity::Public)
        .await
        .unwrap();
    blobs
        .put("users/1/empty", b"", Sensitivity::Personal)
        .await
        .unwrap();
    assert_eq!(
        &blobs.get("users/1/training/a.jpg").await.unwrap()[..],
        PHOTO
    );
    assert_eq!(
        &blobs.get("/users/1/training/a.jpg").await.unwrap()[..],
        PHOTO
    );
    assert_eq!(&blobs.get("users/1/empty").await.unwrap()[..], b"");
    let (public, info) = blobs.get_with_info("public/readme.txt").await.unwrap();
    assert_eq!(&public[..], b"hello");
    assert_eq!(info.sensitivity, Sensitivity::Public);
    assert_eq!(info.key_id, None);

    // Overwrite replaces.
    blobs
        .put("public/readme.txt", b"hello again", Sensitivity::Public)
        .await
        .unwrap();
    assert_eq!(
        &blobs.get("public/readme.txt").await.unwrap()[..],
        b"hello again"
    );

    assert_eq!(
        blobs.list("").await.unwrap(),
        [
            "public/readme.txt",
            "users/1/empty",
            "users/1/training/a.jpg"
        ]
    );
    blobs.delete("public/readme.txt").await.unwrap();
    assert!(matches!(
        blobs.get("public/readme.txt").await,
        Err(Error::NotFound)
    ));
    // Deleting what is gone is fine.
    blobs.delete("public/readme.txt").await.unwrap();
    assert!(matches!(blobs.get("never/was").await, Err(Error::NotFound)));
    // Paths cannot climb out.
    assert!(matches!(
        blobs
            .put("users/../etc/passwd", b"x", Sensitivity::Public)
            .await,
        Err(Error::Invalid(..))
    ));
    assert!(matches!(
        blobs.put("", b"x", Sensitivity::Public).await,
        Err(Error::Invalid(..))
    ));
});

both_stores!(personal_data_is_ciphertext_at_rest, |place| {
    let blobs = place.blobs(&ring1());
    blobs
        .put("users/7/photo.jpg", PHOTO, Sensitivity::Personal)
        .await
        .unwrap();
    blobs
        .put("users/7/photo-again.jpg", PHOTO, Sensitivity::Personal)
        .await
        .unwrap();
    let stored = raw(&blobs, "users/7/photo.jpg").await;
    let again = raw(&blobs, "users/7/photo-again.jpg").await;
    assert!(!contains(&stored, b"personal data"));
    assert!(!contains(&stored, &PHOTO[..16]));
    // Fresh data key and nonces per object: equal plaintexts, unrelated ciphertexts.
    assert_ne!(
        stored[stored.len() - PHOTO.len()..],
        again[again.len() - PHOTO.len()..]
    );
    assert!(stored.starts_with(b"TKRB\x01\x02k1"));
    if let Some(dir) = &place.dir {
        // What is on disk is what the store holds: no plaintext file anywhere.
        let on_disk = std::fs::read(dir.path().join("users/7/photo.jpg")).unwrap();
        assert_eq!(on_disk, stored);
    }
    // Public objects are stored as they are, after the 5-byte header.
    blobs
        .put("public/p.txt", b"plain words", Sensitivity::Public)
        .await
        .unwrap();
    assert_eq!(raw(&blobs, "public/p.txt").await, b"TKRB\x00plain words");
});

both_stores!(tampering_is_detected, |place| {
    let blobs = place.blobs(&ring1());
    blobs
        .put("users/1/a.jpg", PHOTO, Sensitivity::Personal)
        .await
        .unwrap();
    let stored = raw(&blobs, "users/1/a.jpg").await;

    // One flipped bit in the content, in the wrapped key, in the nonce; a truncation.
    let header = 6 + 2 + 12 + 48 + 12;
    for at in [stored.len() - 1, header + 3, 6 + 2 + 5, 6 + 2 + 12 + 1] {
        let mut bad = stored.clone();
        bad[at] ^= 0x01;
        put_raw(&blobs, "users/1/a.jpg", bad).await;
        let got = blobs.get("users/1/a.jpg").await;
        assert!(matches!(got, Err(Error::Tampered(_))), "byte {at}: {got:?}");
    }
    for len in [stored.len() - 1, header, 10, 3] {
        put_raw(&blobs, "users/1/a.jpg", stored[..len].to_vec()).await;
        let got = blobs.get("users/1/a.jpg").await;
        assert!(
            matches!(got, Err(Error::Tampered(_))),
            "length {len}: {got:?}"
        );
    }
    // An intact object copied to another user's prefix does not decrypt there.
    put_raw(&blobs, "users/2/a.jpg", stored.clone()).await;
    assert!(matches!(
        blobs.get("users/2/a.jpg").await,
        Err(Error::Tampered(_))
    ));
    // A key id rewritten to another key of the ring fails too.
    let both = ring1().with_key("k2", &KEY2).unwrap();
    let rotated = place.blobs(&both);
    let mut relabelled = stored.clone();
    relabelled[7] = b'2';
    put_raw(&rotated, "users/1/a.jpg", relabelled).await;
    assert!(matches!(
        rotated.get("users/1/a.jpg").await,
        Err(Error::Tampered(_))
    ));
    // A file that is not ours at all.
    put_raw(&blobs, "users/1/b.jpg", PHOTO.to_vec()).await;
    assert!(matches!(
        blobs.get("users/1/b.jpg").await,
        Err(Error::Tampered(_))
    ));
    // The original bytes still read.
    put_raw(&blobs, "users/1/a.jpg", stored).await;
    assert_eq!(&blobs.get("users/1/a.jpg").await.unwrap()[..], PHOTO);
});

both_stores!(key_rotation_keeps_old_objects_readable, |place| {
    let old = place.blobs(&ring1());
    old.put(
        "users/1/old.jpg",
        b"written under k1",
        Sensitivity::Personal,
    )
    .await
    .unwrap();

    let ring = ring1().with_key("k2", &KEY2).unwrap();
    assert_eq!(ring.current_key_id(), Some("k2"));
    let new = place.blobs(&ring);
    let info = new
        .put(
            "users/1/new.jpg",
            b"written under k2",
            Sensitivity::Personal,
        )
        .await
        .unwrap();
    assert_eq!(info.key_id.as_deref(), Some("k2"));
    let (bytes, info) = new.get_with_info("users/1/old.jpg").await.unwrap();
    assert_eq!(&bytes[..], b"written under k1");
    assert_eq!(info.key_id.as_deref(), Some("k1"));
    let (bytes, info) = new.get_with_info("users/1/new.jpg").await.unwrap();
    assert_eq!(&bytes[..], b"written under k2");
    assert_eq!(info.key_id.as_deref(), Some("k2"));

    // A ring without k1 cannot read k1's objects, and says which key it lacks.
    let only_k2 = place.blobs(&KeyRing::new().with_key("k2", &KEY2).unwrap());
    let got = only_k2.get("users/1/old.jpg").await;
    assert!(
        matches!(&got, Err(Error::UnknownKey(k)) if k == "k1"),
        "{got:?}"
    );
    assert_eq!(
        &only_k2.get("users/1/new.jpg").await.unwrap()[..],
        b"written under k2"
    );
    // Rewriting an old object moves it to the newest key.
    let plain = new.get("users/1/old.jpg").await.unwrap();
    new.put("users/1/old.jpg", &plain, Sensitivity::Personal)
        .await
        .unwrap();
    assert_eq!(
        &only_k2.get("users/1/old.jpg").await.unwrap()[..],
        b"written under k1"
    );
    // No key, no personal data.
    let keyless = place.blobs(&KeyRing::new());
    assert!(matches!(
        keyless.put("users/1/x", b"x", Sensitivity::Personal).await,
        Err(Error::Key(_))
    ));
    keyless
        .put("public/x", b"x", Sensitivity::Public)
        .await
        .unwrap();
});

/// Content bytes per chunk of a streamed personal object, and its header's length
/// (`TKRB 02 | 1 | "k1" | nonce | wrapped key | chunk length | nonce prefix`).
const CHUNK: usize = 64 * 1024;
const STREAM_HEADER: usize = 6 + 2 + 12 + 48 + 4 + 7;
const TAG: usize = 16;

/// `len` bytes that differ from chunk to chunk, so a moved chunk cannot read as another.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// `data` as a stream of `piece`-byte pieces, as an upload or a ZIP writer would yield it.
fn pieces(data: &[u8], piece: usize) -> impl Stream<Item = Result<Bytes, Error>> + Unpin {
    let parts: Vec<_> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(parts)
}

async fn read_streamed(blobs: &Blobs, path: &str) -> Result<Vec<u8>, Error> {
    let (_, s) = blobs.get_stream(path).await?;
    let parts: Vec<Bytes> = s.try_collect().await?;
    Ok(parts.concat())
}

both_stores!(streamed_objects_round_trip_at_every_size, |place| {
    let blobs = place.blobs(&ring1());
    // 11 MiB: three parts of an S3 multipart upload (5 MiB each but the last).
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, 11 << 20] {
        let data = content(len);
        let path = format!("users/1/exports/{len}.zip");
        let (info, n) = blobs
            .put_stream(&path, pieces(&data, 10_000), Sensitivity::Personal)
            .await
            .unwrap();
        assert_eq!((n, info.key_id.as_deref()), (len as u64, Some("k1")));
        assert_eq!(blobs.get(&path).await.unwrap(), data, "whole, {len} bytes");
        let (info, s) = blobs.get_stream(&path).await.unwrap();
        assert_eq!(info.sensitivity, Sensitivity::Personal);
        let parts: Vec<Bytes> = s.try_collect().await.unwrap();
        assert!(
            parts.iter().all(|p| p.len() <= CHUNK),
            "read a chunk at a time"
        );
        assert_eq!(parts.concat(), data, "streamed, {len} bytes");
        // Chunked: one tag per chunk (at least one, the empty last chunk of an empty object),
        // nothing of the content in the clear.
        let stored = raw(&blobs, &path).await;
        assert!(stored.starts_with(b"TKRB\x02\x02k1"));
        let chunks = len.div_ceil(CHUNK).max(1);
        assert_eq!(
            stored.len(),
            STREAM_HEADER + len + chunks * TAG,
            "{len} bytes"
        );
        if len >= 64 {
            assert!(!contains(&stored, &data[..64]));
        }
    }
    // Public objects stream as they are.
    let data = content(CHUNK + 3);
    blobs
        .put_stream("public/big.bin", pieces(&data, 777), Sensitivity::Public)
        .await
        .unwrap();
    assert_eq!(
        raw(&blobs, "public/big.bin").await,
        [b"TKRB\x00".as_slice(), &data].concat()
    );
    assert_eq!(read_streamed(&blobs, "public/big.bin").await.unwrap(), data);
    // Objects written whole read as a stream too.
    blobs
        .put("users/1/a.jpg", PHOTO, Sensitivity::Personal)
        .await
        .unwrap();
    assert_eq!(read_streamed(&blobs, "users/1/a.jpg").await.unwrap(), PHOTO);
    // A failing source stores nothing, and replaces nothing.
    let failing = pieces(&data, 1000).chain(stream::iter([Err(Error::NotFound)]));
    let got = blobs
        .put_stream("users/1/exports/0.zip", failing, Sensitivity::Personal)
        .await;
    assert!(matches!(got, Err(Error::NotFound)), "{got:?}");
    assert!(blobs.get("users/1/exports/0.zip").await.unwrap().is_empty());
    let got = blobs
        .put_stream(
            "users/1/exports/new.zip",
            pieces(&data, 1000).chain(stream::iter([Err(Error::NotFound)])),
            Sensitivity::Personal,
        )
        .await;
    assert!(got.is_err());
    assert!(matches!(
        blobs.get("users/1/exports/new.zip").await,
        Err(Error::NotFound)
    ));
});

both_stores!(streamed_objects_detect_tampering, |place| {
    let blobs = place.blobs(&ring1());
    let data = content(3 * CHUNK + 5);
    let path = "users/1/exports/e.zip";
    blobs
        .put_stream(path, pieces(&data, 4096), Sensitivity::Personal)
        .await
        .unwrap();
    let stored = raw(&blobs, path).await;
    let unit = CHUNK + TAG;
    let chunk =
        |i: usize| STREAM_HEADER + i * unit..(STREAM_HEADER + (i + 1) * unit).min(stored.len());

    let mut flipped = stored.clone();
    flipped[chunk(1).start + 100] ^= 1;
    let mut swapped = stored[..STREAM_HEADER].to_vec();
    for i in [1, 0, 2, 3] {
        swapped.extend_from_slice(&stored[chunk(i)]);
    }
    let mut appended = stored.clone();
    appended.extend_from_slice(&stored[chunk(3)]);
    let mut longer_chunks = stored.clone();
    longer_chunks[STREAM_HEADER - 9] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped bit in chunk 1", flipped),
        ("the last chunk dropped", stored[..chunk(3).start].to_vec()),
        ("cut inside a chunk", stored[..chunk(2).start + 10].to_vec()),
        ("chunks 0 and 1 swapped", swapped),
        ("the last chunk twice", appended),
        ("another chunk length", longer_chunks),
        ("cut inside the header", stored[..50].to_vec()),
    ];
    for (what, bad) in cases {
        put_raw(&blobs, path, bad).await;
        let got = blobs.get(path).await;
        assert!(matches!(got, Err(Error::Tampered(_))), "{what}: {got:?}");
        let got = read_streamed(&blobs, path).await;
        assert!(
            matches!(got, Err(Error::Tampered(_))),
            "{what}, streamed: {got:?}"
        );
    }
    // Chunks before a damaged one arrive; the stream then fails, it never ends early.
    let mut flipped = stored.clone();
    flipped[chunk(2).start] ^= 1;
    put_raw(&blobs, path, flipped).await;
    let (_, mut s) = blobs.get_stream(path).await.unwrap();
    assert_eq!(s.next().await.unwrap().unwrap(), &data[..CHUNK]);
    assert_eq!(s.next().await.unwrap().unwrap(), &data[CHUNK..2 * CHUNK]);
    assert!(matches!(s.next().await, Some(Err(Error::Tampered(_)))));
    // An intact object copied to another user's prefix does not decrypt there.
    put_raw(&blobs, "users/2/exports/e.zip", stored.clone()).await;
    assert!(matches!(
        blobs.get("users/2/exports/e.zip").await,
        Err(Error::Tampered(_))
    ));
    // A ring without its key says which key it lacks.
    let only_k2 = place.blobs(&KeyRing::new().with_key("k2", &KEY2).unwrap());
    put_raw(&blobs, path, stored.clone()).await;
    assert!(matches!(only_k2.get_stream(path).await, Err(Error::UnknownKey(k)) if k == "k1"));
    assert_eq!(blobs.get(path).await.unwrap(), data);
});

both_stores!(delete_prefix_removes_everything_under_a_user, |place| {
    let blobs = place.blobs(&ring1());
    for path in [
        "users/1/a.jpg",
        "users/1/training/b.jpg",
        "users/1/exports/2026/c.zip",
        "users/10/keep.jpg",
        "users/2/keep.jpg",
        "users/1x",
    ] {
        blobs.put(path, PHOTO, Sensitivity::Personal).await.unwrap();
    }
    assert_eq!(
        blobs.list("users/1").await.unwrap(),
        [
            "users/1/a.jpg",
            "users/1/exports/2026/c.zip",
            "users/1/training/b.jpg"
        ]
    );
    assert_eq!(blobs.delete_prefix("users/1").await.unwrap(), 3);
    assert!(blobs.list("users/1").await.unwrap().is_empty());
    // Whole segments only: users/10 and users/1x are other prefixes.
    assert_eq!(
        blobs.list("").await.unwrap(),
        ["users/10/keep.jpg", "users/1x", "users/2/keep.jpg"]
    );
    assert_eq!(blobs.delete_prefix("users/1").await.unwrap(), 0);
    assert!(matches!(
        blobs.delete_prefix("").await,
        Err(Error::Invalid(..))
    ));
    if let Some(dir) = &place.dir {
        // No empty directories are left behind on disk either.
        assert!(!dir.path().join("users/1").exists());
    }
});

#[test]
fn key_ring_parses_the_config_form() {
    let k1 = KeyRing::generate_key_hex();
    let k2 = KeyRing::generate_key_hex();
    assert_eq!(k1.len(), 64);
    assert_ne!(k1, k2);
    let ring = KeyRing::parse(&format!(" 2026-01:{k1} , 2026-06:{k2} ")).unwrap();
    assert_eq!(ring.key_ids(), ["2026-01", "2026-06"]);
    assert_eq!(ring.current_key_id(), Some("2026-06"));
    assert!(KeyRing::parse("").unwrap().current_key_id().is_none());
    for bad in [
        "k1".to_string(),
        format!("k1:{}", &k1[..62]),
        format!("k1:{}zz", &k1[..62]),
        format!("k1:{k1},k1:{k2}"),
        format!("bad id:{k1}"),
        format!(":{k1}"),
    ] {
        assert!(matches!(KeyRing::parse(&bad), Err(Error::Key(_))), "{bad}");
    }
    // Debug output names keys, never shows them.
    let debug = format!("{ring:?}");
    assert!(debug.contains("2026-06") && !debug.contains(&k2) && !debug.contains(&k1));
}

#[test]
fn object_store_urls_are_checked() {
    let err = |url: &str| Blobs::open(url, KeyRing::new()).unwrap_err();
    assert!(matches!(err("ftp://host/x"), Error::ObjectStoreUrl(_)));
    assert!(matches!(err("s3:///no-bucket"), Error::ObjectStoreUrl(_)));
    assert!(matches!(
        err("s3://bucket?endpoint=http://127.0.0.1:1&no_such_option=1"),
        Error::ObjectStoreUrl(_)
    ));
    // GCS is compiled in and configured from the URL, with the same checks.
    assert!(matches!(
        err("gs://bucket/prefix?no_such_option=1"),
        Error::ObjectStoreUrl(_)
    ));
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("objects/here");
    Blobs::open(nested.to_str().unwrap(), KeyRing::new()).unwrap();
    assert!(nested.is_dir());
}
