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
//!
//! Rotation: add a new key to the [`KeyRing`] (newest last); new objects use it, objects
//! written under older keys still decrypt as long as their key stays in the ring.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use url::Url;

use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"TKRB";
const FORMAT_PUBLIC: u8 = 0;
const FORMAT_ENVELOPE_V1: u8 = 1;
const NONCE_LEN: usize = 12;
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

    fn seal(&self, path: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let kek = self
            .keys
            .last()
            .ok_or_else(|| Error::Key("no key configured: cannot store personal data".into()))?;
        let mut out = Vec::with_capacity(
            6 + kek.id.len() + 2 * NONCE_LEN + WRAPPED_KEY_LEN + plaintext.len() + TAG_LEN,
        );
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_ENVELOPE_V1);
        out.push(kek.id.len() as u8);
        out.extend_from_slice(kek.id.as_bytes());
        let dek = Aes256Gcm::generate_key(OsRng);
        let wrap_nonce = Aes256Gcm::generate_nonce(OsRng);
        let wrapped = kek
            .cipher
            .encrypt(
                &wrap_nonce,
                Payload {
                    msg: &dek,
                    aad: &out,
                },
            )
            .map_err(|_| Error::Key("wrapping the data key failed".into()))?;
        out.extend_from_slice(&wrap_nonce);
        out.extend_from_slice(&wrapped);
        let data_nonce = Aes256Gcm::generate_nonce(OsRng);
        out.extend_from_slice(&data_nonce);
        let mut aad = out.clone();
        aad.extend_from_slice(path.as_bytes());
        let ciphertext = Aes256Gcm::new(&dek)
            .encrypt(
                &data_nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Key("encryption failed".into()))?;
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts a format-1 object; `stored` starts with the magic.
    fn open(&self, path: &str, stored: &[u8]) -> Result<(Vec<u8>, String)> {
        let tampered = || Error::Tampered(path.to_owned());
        let kid_len = *stored.get(5).ok_or_else(tampered)? as usize;
        let kid_end = 6 + kid_len;
        let wrap_end = kid_end + NONCE_LEN + WRAPPED_KEY_LEN;
        let header_end = wrap_end + NONCE_LEN;
        if stored.len() < header_end + TAG_LEN {
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
        Ok((plaintext, kid.to_owned()))
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

    /// The object's content (decrypted). [`Error::NotFound`] if there is none.
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        Ok(self.get_with_info(path).await?.0)
    }

    /// The object's content and how it was stored.
    pub async fn get_with_info(&self, path: &str) -> Result<(Bytes, BlobInfo)> {
        let rel = parse_path(path)?;
        let stored = match self.store.get(&self.join(&rel)).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Err(Error::NotFound),
            Err(e) => return Err(e.into()),
        };
        if stored.len() < 5 || &stored[..4] != MAGIC {
            return Err(Error::Tampered(rel.to_string()));
        }
        match stored[4] {
            FORMAT_PUBLIC => Ok((
                stored.slice(5..),
                BlobInfo {
                    sensitivity: Sensitivity::Public,
                    key_id: None,
                },
            )),
            FORMAT_ENVELOPE_V1 => {
                let (plain, kid) = self.keys.open(rel.as_ref(), &stored)?;
                Ok((
                    Bytes::from(plain),
                    BlobInfo {
                        sensitivity: Sensitivity::Personal,
                        key_id: Some(kid),
                    },
                ))
            }
            _ => Err(Error::Tampered(rel.to_string())),
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

fn parse_path(path: &str) -> Result<Path> {
    Path::parse(path).map_err(|e| Error::Invalid("object path", e.to_string()))
}
