//! The training export: what the operator hands to `training/` from the consented store
//! (`takarir training export`), and which items of an earlier export are no longer consented
//! (`takarir training withdrawn --since MANIFEST`).
//!
//! Only items whose owner's latest training-consent entry is a grant leave the store. Nothing
//! that identifies a person goes out: the photo is the PNG made at upload (pixels only, no
//! EXIF), the caption is the user's final one (their correction if any), and the item is named
//! by a pseudonym, HMAC-SHA-256 of its row id under the deployment's training-export key (not
//! the account, not the email, not the row id itself). The same key gives the same pseudonyms
//! on every export, so a later export or `withdrawn` can tell which items went away; without
//! the key nobody can link a pseudonym back to a row.
//!
//! The layout is the one `training/` reads for Flickr8k (`images/`, `captions.LANG.tsv` with
//! `NAME#0<TAB>caption`, `splits/train.txt` and `splits/dev.txt`), plus `manifest.json`. An
//! item's split follows from its pseudonym (one in five held back for evaluation), so it stays
//! on the same side in every export. Each user whose items went out gets an entry in their
//! audit log (the access page shows it), as staff access does, whose `detail` is the export's
//! time: a model card that names that export tells the user their items trained it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use takarir_store::consents::PURPOSE_TRAINING;
use takarir_store::training::{TrainingItem, TrainingItemId};
use takarir_store::users::UserId;
use time::OffsetDateTime;

use crate::config::ServerConfig;
use crate::storage::Storage;

/// `manifest.json`'s `format`.
pub const FORMAT: &str = "takarir-training-export/1";
/// The audit-log action recorded for each user whose items were exported.
pub const AUDIT_ACTION: &str = "training_export";
/// One item in this many is held back for evaluation (`splits/dev.txt`).
const HOLD_BACK_EVERY: u8 = 5;

/// The pseudonym key: `training_export_key` from the configuration, or a key generated into
/// `data_dir/training-export.key` (owner-readable) the first time.
pub fn export_key(config: &ServerConfig) -> anyhow::Result<Vec<u8>> {
    let hex_key = match &config.training_export_key {
        Some(k) => k.trim().to_owned(),
        None => crate::storage::key_file(&config.data_dir, "training-export.key", || {
            takarir_store::KeyRing::generate_key_hex()
        })?,
    };
    let key = hex::decode(&hex_key).context("training_export_key is not hexadecimal")?;
    if key.len() < 16 {
        bail!("training_export_key must be at least 16 bytes (32 hex digits)");
    }
    Ok(key)
}

/// The item's pseudonym: 32 hex digits of HMAC-SHA-256(key, "training-item:" + row id).
pub fn pseudonym(key: &[u8], id: TrainingItemId) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("training-item:{}", id.0).as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Whether a pseudonym belongs to the held-back evaluation part.
pub fn held_back(pseudonym: &str) -> bool {
    u8::from_str_radix(&pseudonym[..2], 16).is_ok_and(|b| b % HOLD_BACK_EVERY == 0)
}

/// One exported item, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The pseudonym; the image is `images/ID.png`.
    pub id: String,
    pub lang: String,
    /// The policy version the owner's standing consent was given under.
    pub consent_version: String,
    /// `train` or `dev` (held back for evaluation).
    pub split: String,
}

/// What an earlier export had that this one has not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// The earlier manifest's export time.
    pub previous_exported_at: String,
    /// How many of its items are no longer consented (withdrawn or erased with the account).
    pub count: usize,
    /// Their pseudonyms, sorted.
    pub ids: Vec<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// RFC 3339, UTC.
    pub exported_at: String,
    /// Items in this export.
    pub items: usize,
    /// Items per caption language.
    pub per_language: BTreeMap<String, usize>,
    /// Held-back (dev) items per caption language.
    pub held_back_per_language: BTreeMap<String, usize>,
    /// Items per consent (policy) version.
    pub consent_versions: BTreeMap<String, usize>,
    /// Against the earlier manifest given with `--previous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_since_previous: Option<Withdrawn>,
    /// Every item, in pseudonym order.
    pub entries: Vec<ManifestItem>,
}

impl Manifest {
    /// Reads a `manifest.json`.
    pub fn read(path: &Path) -> anyhow::Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a training export manifest", path.display()))?;
        if m.format != FORMAT {
            bail!(
                "{}: format {:?}, expected {FORMAT:?}",
                path.display(),
                m.format
            );
        }
        Ok(m)
    }
}

/// A consented item with its standing consent version.
struct Consented {
    item: TrainingItem,
    pseudonym: String,
    consent_version: String,
}

/// Every item whose owner's latest training-consent entry is a grant, read 500 at a time.
async fn consented(storage: &Storage, key: &[u8]) -> anyhow::Result<Vec<Consented>> {
    let db = &storage.db;
    let mut standing: HashMap<UserId, Option<String>> = HashMap::new();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = db.training().list_all(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for item in page {
            let version = match standing.entry(item.user_id) {
                Entry::Occupied(e) => e.get().clone(),
                Entry::Vacant(e) => {
                    let latest = db.consents().latest(item.user_id, PURPOSE_TRAINING).await?;
                    e.insert(latest.filter(|c| c.granted).map(|c| c.policy_version))
                        .clone()
                }
            };
            let Some(version) = version else {
                continue;
            };
            out.push(Consented {
                pseudonym: pseudonym(key, item.id),
                item,
                consent_version: version,
            });
        }
    }
    out.sort_by(|a, b| a.pseudonym.cmp(&b.pseudonym));
    Ok(out)
}

/// The pseudonyms of `previous` that are not consented now, sorted.
pub async fn withdrawn_since(
    storage: &Storage,
    key: &[u8],
    previous: &Manifest,
) -> anyhow::Result<Vec<String>> {
    let now: BTreeSet<String> = consented(storage, key)
        .await?
        .into_iter()
        .map(|c| c.pseudonym)
        .collect();
    let mut gone: Vec<String> = previous
        .entries
        .iter()
        .filter(|e| !now.contains(&e.id))
        .map(|e| e.id.clone())
        .collect();
    gone.sort();
    Ok(gone)
}

/// Writes the consented items into `to` (a new or empty directory), records the export in the
/// audit log of every user whose items went out, and returns the manifest it wrote.
pub async fn export(
    storage: &Storage,
    key: &[u8],
    to: &Path,
    reason: &str,
    previous: Option<&Manifest>,
) -> anyhow::Result<Manifest> {
    if reason.trim().is_empty() {
        bail!("a reason is required (--reason): it is recorded in each user's audit log");
    }
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        bail!("{} is not empty", to.display());
    }
    let items = consented(storage, key).await?;
    // Photos and captions: readable by the operator's account only.
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(to)
        .with_context(|| format!("creating {}", to.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    std::fs::create_dir_all(to.join("images"))?;
    std::fs::create_dir_all(to.join("splits"))?;
    let mut captions: BTreeMap<String, String> = BTreeMap::new();
    let (mut train, mut dev) = (String::new(), String::new());
    let mut manifest = Manifest {
        format: FORMAT.into(),
        exported_at: OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?,
        items: items.len(),
        per_language: BTreeMap::new(),
        held_back_per_language: BTreeMap::new(),
        consent_versions: BTreeMap::new(),
        withdrawn_since_previous: None,
        entries: Vec::with_capacity(items.len()),
    };
    let mut users = BTreeSet::new();
    for c in &items {
        let png = storage
            .blobs
            .get(&c.item.object_path)
            .await
            .with_context(|| format!("reading the image of training item {}", c.pseudonym))?;
        let name = format!("{}.png", c.pseudonym);
        std::fs::write(to.join("images").join(&name), &png)?;
        // One line per caption; the pipeline's TSV has no room for tabs or line breaks.
        let caption = c
            .item
            .caption
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        captions
            .entry(c.item.lang.clone())
            .or_default()
            .push_str(&format!("{name}#0\t{caption}\n"));
        let split = if held_back(&c.pseudonym) {
            dev.push_str(&format!("{name}\n"));
            *manifest
                .held_back_per_language
                .entry(c.item.lang.clone())
                .or_default() += 1;
            "dev"
        } else {
            train.push_str(&format!("{name}\n"));
            "train"
        };
        *manifest
            .per_language
            .entry(c.item.lang.clone())
            .or_default() += 1;
        *manifest
            .consent_versions
            .entry(c.consent_version.clone())
            .or_default() += 1;
        manifest.entries.push(ManifestItem {
            id: c.pseudonym.clone(),
            lang: c.item.lang.clone(),
            consent_version: c.consent_version.clone(),
            split: split.into(),
        });
        users.insert(c.item.user_id);
    }
    for (lang, text) in &captions {
        std::fs::write(to.join(format!("captions.{lang}.tsv")), text)?;
    }
    std::fs::write(to.join("splits/train.txt"), train)?;
    std::fs::write(to.join("splits/dev.txt"), dev)?;
    if let Some(prev) = previous {
        let now: BTreeSet<&str> = manifest.entries.iter().map(|e| e.id.as_str()).collect();
        let ids: Vec<String> = prev
            .entries
            .iter()
            .filter(|e| !now.contains(e.id.as_str()))
            .map(|e| e.id.clone())
            .collect();
        manifest.withdrawn_since_previous = Some(Withdrawn {
            previous_exported_at: prev.exported_at.clone(),
            count: ids.len(),
            ids,
        });
    }
    for user in users {
        storage
            .db
            .audit()
            .record_operator(user, AUDIT_ACTION, reason, &manifest.exported_at)
            .await?;
    }
    // The manifest last: a directory with a manifest is a complete export.
    let mut f = std::fs::File::create(to.join("manifest.json"))?;
    serde_json::to_writer_pretty(&mut f, &manifest)?;
    f.write_all(b"\n")?;
    Ok(manifest)
}
