//! Object storage with envelope encryption for personal data.
//!
//! # Stored format
//! Every object starts with the magic `TKRB` and a format byte, so a stored object says how to
//! read it and a foreign or damaged one is refused:
//!
//! - format 0, public: `TKRB 00 | bytes`.
//! - format 1, personal: `TKRB 01 | kid_len u8 | kid | wrap_nonce[12] | wrapped_dek[48] |
//!   data_nonce[12] | ciphertext+tag`. The data key (`dek`, 32 random bytes, one per object) is
//!   AES-256-GCM-encrypted ("wrapped") under the key-encryption key named `kid`, with the bytes
//!   before `wrap_nonce` as associated data; the content is AES-256-GCM-encrypted under the data
//!   key, with the whole header and the object's path (relative to the store's root) as
//!   associated data. So a changed byte anywhere, a truncation, a swapped key id, or an object
//!   copied to another path (another user's prefix) fails authentication.
//! - format 2, personal and written as a stream ([`Blobs::put_stream`]): `TKRB 02 | kid_len u8 |
//!   kid | wrap_nonce[12] | wrapped_dek[48] | chunk_len u32 BE | nonce_prefix[7] | chunks`. The
//!   data key is wrapped as in format 1. The content is cut into chunks of `chunk_len` bytes (the
//!   last one shorter, possibly empty), each AES-256-GCM-encrypted on its own with the nonce
//!   `nonce_prefix | chunk index u32 BE | 1 if last else 0` and the whole header and the path as
//!   associated data (the STREAM construction). So an object of any size is written and read a
//!   chunk at a time, and a changed, dropped, reordered or appended chunk, a truncation at a
//!   chunk boundary included, fails authentication.
//!
//! Rotation: add a new key to the [`KeyRing`] (newest last); new objects use it, objects
//! written under older keys still decrypt as long as their key stays in the ring.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use url::Url;

use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"TKRB";
const FORMAT_PUBLIC: u8 = 0;
const FORMAT_ENVELOPE_V1: u8 = 1;
const FORMAT_ENVELOPE_CHUNKED: u8 = 2;
const NONCE_LEN: usize = 12;
/// Content bytes per chunk of a format-2 object.
const CHUNK_LEN: usize = 64 * 1024;
/// The most a format-2 header may claim, so a damaged header cannot make a reader buffer more.
const MAX_CHUNK_LEN: usize = 16 * 1024 * 1024;
const NONCE_PREFIX_LEN: usize = 7;
/// Parts of a streamed upload in flight at once, and their size (S3's smallest part).
pub(crate) const UPLOAD_PARTS_IN_FLIGHT: usize = 2;
const PART_LEN: usize = 5 << 20;
const WRAPPED_KEY_LEN: usize = 32 + 16;
const TAG_LEN: usize = 16;

/// Whether an object holds personal data (encrypted at rest) or not (stored as is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sensitivity {
    Personal,
    Public,
}

/// How a stored object was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub sensitivity: Sensitivity,
    /// The key-encryption key that wraps its data key (personal objects only).
    pub key_id: Option<String>,
}

#[derive(Clone)]
struct Kek {
    id: String,
    cipher: Aes256Gcm,
}

/// Key-encryption keys, oldest first: the newest encrypts, every one of them decrypts.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: Vec<Kek>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl KeyRing {
    /// An empty ring: public objects only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a 32-byte key; it becomes the newest, the one new objects are encrypted with.
    /// Ids are 1 to 64 characters of `A-Z a-z 0-9 . _ -`, unique within the ring.
    pub fn add(&mut self, id: &str, key: &[u8]) -> Result<()> {
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_id {
            return Err(Error::Key(format!("invalid key id {id:?}")));
        }
        if self.keys.iter().any(|k| k.id == id) {
            return Err(Error::Key(format!("duplicate key id {id:?}")));
        }
        let cipher = Aes256Gcm::new_from_slice(key)
            .map_err(|_| Error::Key(format!("key {id:?} must be 32 bytes, not {}", key.len())))?;
        self.keys.push(Kek {
            id: id.to_owned(),
            cipher,
        });
        Ok(())
    }

    /// [`KeyRing::add`], by value.
    pub fn with_key(mut self, id: &str, key: &[u8]) -> Result<Self> {
        self.add(id, key)?;
        Ok(self)
    }

    /// Parses the config form `ID:HEX,ID:HEX,...` (64 hex digits per key), oldest first, so
    /// rotating a key is appending one entry. Whitespace around entries is ignored.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut ring = KeyRing::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key_hex) = entry
                .split_once(':')
                .ok_or_else(|| Error::Key("expected ID:HEX entries separated by commas".into()))?;
            let key = hex::decode(key_hex.trim())
                .map_err(|_| Error::Key(format!("key {id:?} is not hexadecimal")))?;
            ring.add(id.trim(), &key)?;
        }
        Ok(ring)
    }

    /// A fresh random key in the hex form [`KeyRing::parse`] reads.
    pub fn generate_key_hex() -> String {
        hex::encode(Aes256Gcm::generate_key(OsRng))
    }

    /// The ids, oldest first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The id of the key that encrypts new objects.
    pub fn current_key_id(&self) -> Option<&str> {
        self.keys.last().map(|k| k.id.as_str())
    }

    fn find(&self, id: &str) -> Option<&Kek> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// A new data key, wrapped under the newest key: the header up to and including the wrapped
    /// key (`TKRB format kid_len kid wrap_nonce wrapped_dek`), the data cipher, the key id.
    fn wrap_new_key(&self, format: u8) -> Result<(Vec<u8>, Aes256Gcm, String)> {
        let kek = self
            .keys
            .last()
            .ok_or_else(|| Error::Key("no key configured: cannot store personal data".into()))?;
        let mut header = Vec::with_capacity(6 + kek.id.len() + 2 * NONCE_LEN + WRAPPED_KEY_LEN);
        header.extend_from_slice(MAGIC);
        header.push(format);
        header.push(kek.id.len() as u8);
        header.extend_from_slice(kek.id.as_bytes());
        let dek = Aes256Gcm::generate_key(OsRng);
        let wrap_nonce = Aes256Gcm::generate_nonce(OsRng);
        let wrapped = kek
            .cipher
            .encrypt(
                &wrap_nonce,
                Payload {
                    msg: &dek,
                    aad: &header,
                },
            )
            .map_err(|_| Error::Key("wrapping the data key failed".into()))?;
        header.extend_from_slice(&wrap_nonce);
        header.extend_from_slice(&wrapped);
        Ok((header, Aes256Gcm::new(&dek), kek.id.clone()))
    }

    /// The end of the wrapped key in a stored header (`stored[5]` is the key id's length).
    fn wrap_end(stored: &[u8]) -> Option<usize> {
        Some(6 + *stored.get(5)? as usize + NONCE_LEN + WRAPPED_KEY_LEN)
    }

    /// Unwraps the data key of a stored header that holds at least [`KeyRing::wrap_end`] bytes.
    fn unwrap_key(&self, path: &str, stored: &[u8]) -> Result<(Aes256Gcm, String)> {
        let tampered = || Error::Tampered(path.to_owned());
        let kid_end = 6 + *stored.get(5).ok_or_else(tampered)? as usize;
        let wrap_end = kid_end + NONCE_LEN + WRAPPED_KEY_LEN;
        if stored.len() < wrap_end {
            return Err(tampered());
        }
        let kid = std::str::from_utf8(&stored[6..kid_end]).map_err(|_| tampered())?;
        let kek = self
            .find(kid)
            .ok_or_else(|| Error::UnknownKey(kid.to_owned()))?;
        let dek = kek
            .cipher
            .decrypt(
                Nonce::from_slice(&stored[kid_end..kid_end + NONCE_LEN]),
                Payload {
                    msg: &stored[kid_end + NONCE_LEN..wrap_end],
                    aad: &stored[..kid_end],
                },
            )
            .map_err(|_| tampered())?;
        let cipher = Aes256Gcm::new_from_slice(&dek).map_err(|_| tampered())?;
        Ok((cipher, kid.to_owned()))
    }

    fn seal(&self, path: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (mut out, cipher, _) = self.wrap_new_key(FORMAT_ENVELOPE_V1)?;
        let data_nonce = Aes256Gcm::generate_nonce(OsRng);
        out.extend_from_slice(&data_nonce);
        let mut aad = out.clone();
        aad.extend_from_slice(path.as_bytes());
        let ciphertext = cipher
            .encrypt(
                &data_nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Key("encryption failed".into()))?;
        out.reserve(ciphertext.len());
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts a format-1 object; `stored` starts with the magic.
    fn open(&self, path: &str, stored: &[u8]) -> Result<(Vec<u8>, String)> {
        let tampered = || Error::Tampered(path.to_owned());
        let (cipher, kid) = self.unwrap_key(path, stored)?;
        let wrap_end = Self::wrap_end(stored).ok_or_else(tampered)?;
        let header_end = wrap_end + NONCE_LEN;
        if stored.len() < header_end + TAG_LEN {
            return Err(tampered());
        }
        let mut aad = stored[..header_end].to_vec();
        aad.extend_from_slice(path.as_bytes());
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(&stored[wrap_end..header_end]),
                Payload {
                    msg: &stored[header_end..],
                    aad: &aad,
                },
            )
            .map_err(|_| tampered())?;
        Ok((plaintext, kid))
    }

    /// The header of a new format-2 object and the chunk cipher that goes with it.
    fn seal_chunked(&self, path: &str) -> Result<(Vec<u8>, Chunks, String)> {
        let (mut header, cipher, kid) = self.wrap_new_key(FORMAT_ENVELOPE_CHUNKED)?;
        header.extend_from_slice(&(CHUNK_LEN as u32).to_be_bytes());
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        prefix.copy_from_slice(&Aes256Gcm::generate_nonce(OsRng)[..NONCE_PREFIX_LEN]);
        header.extend_from_slice(&prefix);
        let chunks = Chunks::new(cipher, &header, path, prefix, CHUNK_LEN);
        Ok((header, chunks, kid))
    }

    /// The length of a format-2 header, from its first 6 bytes.
    fn chunked_header_len(stored: &[u8]) -> Option<usize> {
        Some(Self::wrap_end(stored)? + 4 + NONCE_PREFIX_LEN)
    }

    /// The chunk cipher of a stored format-2 object from its whole header.
    fn open_chunked(&self, path: &str, header: &[u8]) -> Result<(Chunks, String)> {
        let tampered = || Error::Tampered(path.to_owned());
        let (cipher, kid) = self.unwrap_key(path, header)?;
        let wrap_end = Self::wrap_end(header).ok_or_else(tampered)?;
        if header.len() != wrap_end + 4 + NONCE_PREFIX_LEN {
            return Err(tampered());
        }
        let chunk_len =
            u32::from_be_bytes(header[wrap_end..wrap_end + 4].try_into().unwrap()) as usize;
        if chunk_len == 0 || chunk_len > MAX_CHUNK_LEN {
            return Err(tampered());
        }
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        prefix.copy_from_slice(&header[wrap_end + 4..]);
        Ok((Chunks::new(cipher, header, path, prefix, chunk_len), kid))
    }
}

/// The per-chunk cipher of a format-2 object: chunk `i` has the nonce `prefix | i | last`.
struct Chunks {
    cipher: Aes256Gcm,
    /// Header and path: every chunk is bound to both.
    aad: Vec<u8>,
    prefix: [u8; NONCE_PREFIX_LEN],
    next: u32,
    len: usize,
    path: String,
}

impl Chunks {
    fn new(
        cipher: Aes256Gcm,
        header: &[u8],
        path: &str,
        prefix: [u8; NONCE_PREFIX_LEN],
        len: usize,
    ) -> Chunks {
        let mut aad = header.to_vec();
        aad.extend_from_slice(path.as_bytes());
        Chunks {
            cipher,
            aad,
            prefix,
            next: 0,
            len,
            path: path.to_owned(),
        }
    }

    fn nonce(&mut self, last: bool) -> Result<[u8; NONCE_LEN]> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.prefix);
        nonce[NONCE_PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&self.next.to_be_bytes());
        nonce[NONCE_LEN - 1] = last as u8;
        self.next = self
            .next
            .checked_add(1)
            .ok_or_else(|| Error::Invalid("object", "too many chunks".into()))?;
        Ok(nonce)
    }

    fn seal(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>> {
        let nonce = self.nonce(last)?;
        self.cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &self.aad,
                },
            )
            .map_err(|_| Error::Key("encryption failed".into()))
    }

    fn open(&mut self, sealed: &[u8], last: bool) -> Result<Vec<u8>> {
        let nonce = self.nonce(last)?;
        self.cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: sealed,
                    aad: &self.aad,
                },
            )
            .map_err(|_| Error::Tampered(self.path.clone()))
    }
}

/// A stored object's bytes as they arrive, with a buffer to read whole headers and chunks from.
struct RawReader {
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    buf: BytesMut,
    eof: bool,
}

impl RawReader {
    /// Reads until the buffer holds `n` bytes or the object ends; whether it holds `n`.
    async fn fill(&mut self, n: usize) -> Result<bool> {
        while self.buf.len() < n && !self.eof {
            match self.inner.next().await {
                Some(piece) => self.buf.extend_from_slice(&piece?),
                None => self.eof = true,
            }
        }
        Ok(self.buf.len() >= n)
    }

    /// The decrypted chunks of a format-2 object, the header already consumed. A chunk is the
    /// last when nothing follows it, so one byte past each full chunk is read before opening it.
    fn into_chunks(self, chunks: Chunks) -> BoxStream<'static, Result<Bytes>> {
        stream::try_unfold(
            (self, chunks, false),
            |(mut r, mut chunks, done)| async move {
                if done {
                    return Ok(None);
                }
                let unit = chunks.len + TAG_LEN;
                if r.fill(unit + 1).await? {
                    let sealed = r.buf.split_to(unit);
                    let plain = chunks.open(&sealed, false)?;
                    return Ok(Some((Bytes::from(plain), (r, chunks, false))));
                }
                if r.buf.len() < TAG_LEN {
                    return Err(Error::Tampered(chunks.path.clone()));
                }
                let sealed = r.buf.split();
                let plain = chunks.open(&sealed, true)?;
                Ok(Some((Bytes::from(plain), (r, chunks, true))))
            },
        )
        .boxed()
    }
}

/// The object store: objects addressed by `/`-separated paths relative to a root.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    root: Path,
    keys: KeyRing,
    /// Where it points, without credentials (for logs).
    describe: String,
}

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blobs")
            .field("store", &self.describe)
            .field("keys", &self.keys)
            .finish()
    }
}

impl Blobs {
    /// Opens the object store named by `url`:
    ///
    /// - `file:///absolute/dir` or a plain path: a local directory (created if missing);
    /// - `s3://bucket/optional/prefix?endpoint=...&region=...&allow_http=true&...`: S3 or any
    ///   S3-compatible server; query keys are `object_store`'s S3 options (`access_key_id`,
    ///   `secret_access_key`, `region`, `endpoint`, ...), and `AWS_*` environment variables apply;
    /// - `gs://bucket/optional/prefix?service_account=...`: Google Cloud Storage, likewise with
    ///   `GOOGLE_*` environment variables.
    ///
    /// An unknown query key is an error rather than silently ignored.
    pub fn open(url: &str, keys: KeyRing) -> Result<Blobs> {
        if !url.contains("://") {
            return Self::local(std::path::Path::new(url), keys);
        }
        let parsed = Url::parse(url).map_err(|e| Error::ObjectStoreUrl(e.to_string()))?;
        let bucket = || {
            parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::ObjectStoreUrl("the URL names no bucket".into()))
        };
        let root =
            || Path::from_url_path(parsed.path()).map_err(|e| Error::ObjectStoreUrl(e.to_string()));
        match parsed.scheme() {
            "file" => {
                if parsed.query().is_some() {
                    return Err(Error::ObjectStoreUrl("file:// URLs take no options".into()));
                }
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| Error::ObjectStoreUrl("not an absolute file path".into()))?;
                Self::local(&dir, keys)
            }
            "s3" => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket()?);
                for (k, v) in parsed.query_pairs() {
                    let key: AmazonS3ConfigKey = k
                        .parse()
                        .map_err(|_| Error::ObjectStoreUrl(format!("unknown S3 option {k:?}")))?;
                    builder = builder.with_config(key, v.into_owned());
                }
                Ok(Blobs {
                    store: Arc::new(builder.build()?),
                    root: root()?,
                    keys,
                    describe: format!("s3://{}{}", bucket()?, parsed.path()),
                })
            }
            "gs" => {
                let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket()?);
                for (k, v) in parsed.query_pairs() {
                    let key: GoogleConfigKey = k
                        .parse()
                        .map_err(|_| Error::ObjectStoreUrl(format!("unknown GCS option {k:?}")))?;
                    builder = builder.with_config(key, v.into_owned());
                }
                Ok(Blobs {
                    store: Arc::new(builder.build()?),
                    root: root()?,
                    keys,
                    describe: format!("gs://{}{}", bucket()?, parsed.path()),
                })
            }
            other => Err(Error::ObjectStoreUrl(format!(
                "unsupported scheme {other:?}: expected file, s3 or gs"
            ))),
        }
    }

    fn local(dir: &std::path::Path, keys: KeyRing) -> Result<Blobs> {
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        Ok(Blobs {
            store: Arc::new(store),
            root: Path::default(),
            keys,
            describe: format!("file://{}", dir.display()),
        })
    }

    /// Wraps an already-built store; `root` is the prefix all paths live under.
    pub fn from_store(store: Arc<dyn ObjectStore>, root: &str, keys: KeyRing) -> Result<Blobs> {
        let root = parse_path(root)?;
        Ok(Blobs {
            describe: format!("{store}/{root}"),
            store,
            root,
            keys,
        })
    }

    /// The underlying store (raw bytes, as stored: encrypted objects stay encrypted).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }

    /// Where `path` lives in the underlying store (the root prefix joined with the path).
    pub fn location(&self, path: &str) -> Result<Path> {
        let rel = parse_path(path)?;
        if rel.as_ref().is_empty() {
            return Err(Error::Invalid("object path", "empty".into()));
        }
        Ok(self.join(&rel))
    }

    fn join(&self, rel: &Path) -> Path {
        Path::from_iter(self.root.parts().chain(rel.parts()))
    }

    /// Stores `data` at `path`, replacing any object there; personal data is encrypted with
    /// the ring's newest key ([`Error::Key`] if the ring is empty).
    pub async fn put(&self, path: &str, data: &[u8], sensitivity: Sensitivity) -> Result<BlobInfo> {
        let rel = parse_path(path)?;
        if rel.as_ref().is_empty() {
            return Err(Error::Invalid("object path", "empty".into()));
        }
        let (stored, info) = match sensitivity {
            Sensitivity::Personal => (
                self.keys.seal(rel.as_ref(), data)?,
                BlobInfo {
                    sensitivity,
                    key_id: self.keys.current_key_id().map(str::to_owned),
                },
            ),
            Sensitivity::Public => {
                let mut v = Vec::with_capacity(5 + data.len());
                v.extend_from_slice(MAGIC);
                v.push(FORMAT_PUBLIC);
                v.extend_from_slice(data);
                (
                    v,
                    BlobInfo {
                        sensitivity,
                        key_id: None,
                    },
                )
            }
        };
        self.store
            .put(&self.join(&rel), PutPayload::from(stored))
            .await?;
        Ok(info)
    }

    /// Stores what `data` yields at `path`, replacing any object there, without holding it
    /// whole: it is uploaded in parts, and personal data is encrypted a chunk at a time (format
    /// 2). Returns how it was stored and the content's length. If `data` or the upload fails,
    /// nothing is stored.
    pub async fn put_stream<S>(
        &self,
        path: &str,
        mut data: S,
        sensitivity: Sensitivity,
    ) -> Result<(BlobInfo, u64)>
    where
        S: Stream<Item = Result<Bytes>> + Unpin + Send,
    {
        let location = self.location(path)?;
        let rel = parse_path(path)?;
        let (header, mut chunks, info) = match sensitivity {
            Sensitivity::Personal => {
                let (header, chunks, kid) = self.keys.seal_chunked(rel.as_ref())?;
                let info = BlobInfo {
                    sensitivity,
                    key_id: Some(kid),
                };
                (header, Some(chunks), info)
            }
            Sensitivity::Public => {
                let mut header = MAGIC.to_vec();
                header.push(FORMAT_PUBLIC);
                let info = BlobInfo {
                    sensitivity,
                    key_id: None,
                };
                (header, None, info)
            }
        };
        let total = multipart_upload(self.store.as_ref(), &location, PART_LEN, async |out| {
            out.write(&header);
            let mut pending = Vec::with_capacity(chunks.as_ref().map_or(0, |c| c.len));
            let mut total = 0u64;
            while let Some(piece) = data.next().await {
                let piece = piece?;
                total += piece.len() as u64;
                out.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await?;
                let Some(chunks) = chunks.as_mut() else {
                    out.put(piece);
                    continue;
                };
                let mut rest = &piece[..];
                while !rest.is_empty() {
                    // A full chunk is sealed only once more content follows: the last chunk
                    // is marked as such.
                    if pending.len() == chunks.len {
                        out.write(&chunks.seal(&pending, false)?);
                        pending.clear();
                    }
                    let take = (chunks.len - pending.len()).min(rest.len());
                    pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                }
            }
            if let Some(chunks) = chunks.as_mut() {
                out.write(&chunks.seal(&pending, true)?);
            }
            Ok(total)
        })
        .await?;
        Ok((info, total))
    }

    /// The object's content (decrypted). [`Error::NotFound`] if there is none.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        Ok(self.get_with_info(path).await?.0)
    }

    /// The object's content and how it was stored.
    pub async fn get_with_info(&self, path: &str) -> Result<(Bytes, BlobInfo)> {
        let (info, mut pieces) = self.get_stream(path).await?;
        let mut whole = BytesMut::new();
        while let Some(piece) = pieces.next().await {
            let piece = piece?;
            if whole.is_empty() {
                whole = BytesMut::from(piece);
            } else {
                whole.extend_from_slice(&piece);
            }
        }
        Ok((whole.freeze(), info))
    }

    /// How the object was stored and its content as it is read, decrypted chunk by chunk for
    /// format 2 (a format-1 object comes whole: it was written whole). A missing object, an
    /// unknown key or a damaged header fail here; a damaged chunk fails the stream when reached,
    /// after the chunks before it.
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<(BlobInfo, BoxStream<'static, Result<Bytes>>)> {
        let rel = parse_path(path)?;
        let got = match self.store.get(&self.join(&rel)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(Error::NotFound),
            Err(e) => return Err(e.into()),
        };
        let tampered = || Error::Tampered(rel.to_string());
        let mut r = RawReader {
            inner: got.into_stream(),
            buf: BytesMut::new(),
            eof: false,
        };
        if !r.fill(5).await? || &r.buf[..4] != MAGIC {
            return Err(tampered());
        }
        match r.buf[4] {
            FORMAT_PUBLIC => {
                r.buf.advance(5);
                let first = r.buf.split().freeze();
                let rest = r.inner.map_err(Error::from);
                let info = BlobInfo {
                    sensitivity: Sensitivity::Public,
                    key_id: None,
                };
                Ok((info, stream::once(async { Ok(first) }).chain(rest).boxed()))
            }
            FORMAT_ENVELOPE_V1 => {
                r.fill(usize::MAX).await?;
                let (plain, kid) = self.keys.open(rel.as_ref(), &r.buf)?;
                let info = BlobInfo {
                    sensitivity: Sensitivity::Personal,
                    key_id: Some(kid),
                };
                Ok((info, stream::once(async { Ok(Bytes::from(plain)) }).boxed()))
            }
            FORMAT_ENVELOPE_CHUNKED => {
                r.fill(6).await?;
                let header_len = KeyRing::chunked_header_len(&r.buf).ok_or_else(tampered)?;
                if !r.fill(header_len).await? {
                    return Err(tampered());
                }
                let header = r.buf.split_to(header_len);
                let (chunks, kid) = self.keys.open_chunked(rel.as_ref(), &header)?;
                let info = BlobInfo {
                    sensitivity: Sensitivity::Personal,
                    key_id: Some(kid),
                };
                Ok((info, r.into_chunks(chunks)))
            }
            _ => Err(tampered()),
        }
    }

    /// Deletes the object; deleting what is not there is not an error.
    pub async fn delete(&self, path: &str) -> Result<()> {
        match self.store.delete(&self.location(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Paths of the objects under `prefix` (whole segments: `users/1` does not cover
    /// `users/10`), sorted; `""` lists everything.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list_locations(prefix)
            .await?
            .iter()
            .filter_map(|loc| {
                loc.prefix_match(&self.root)
                    .map(|parts| Path::from_iter(parts).to_string())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn list_locations(&self, prefix: &str) -> Result<Vec<Path>> {
        let full = self.join(&parse_path(prefix)?);
        let prefix = (!full.as_ref().is_empty()).then_some(&full);
        Ok(self
            .store
            .list(prefix)
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?)
    }

    /// Deletes every object under `prefix` (whole segments, as [`Blobs::list`]); returns how
    /// many. The prefix must not be empty.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        if parse_path(prefix)?.as_ref().is_empty() {
            return Err(Error::Invalid("prefix", "empty".into()));
        }
        let locations = self.list_locations(prefix).await?;
        let mut deleted = 0;
        let mut results = self
            .store
            .delete_stream(stream::iter(locations.into_iter().map(Ok)).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }
}

/// Writes one object at `location` through a multipart upload in parts of `part_len`: `fill`
/// writes the content. If it fails, the upload is aborted, so nothing is stored and nothing
/// replaced, and its error is returned.
pub(crate) async fn multipart_upload<T>(
    store: &dyn ObjectStore,
    location: &Path,
    part_len: usize,
    fill: impl AsyncFnOnce(&mut WriteMultipart) -> Result<T>,
) -> Result<T> {
    let upload = store.put_multipart(location).await?;
    let mut out = WriteMultipart::new_with_chunk_size(upload, part_len);
    match fill(&mut out).await {
        Ok(done) => {
            out.finish().await?;
            Ok(done)
        }
        Err(e) => {
            // The first error is the one to report; a failed abort leaves only an unfinished
            // upload, which the store discards.
            let _ = out.abort().await;
            Err(e)
        }
    }
}

fn parse_path(path: &str) -> Result<Path> {
    Path::parse(path).map_err(|e| Error::Invalid("object path", e.to_string()))
}
