//! Model versions: a models directory (by default the one holding the configured `model`) may
//! hold several caption models, one directory each. `takarir models promote NAME` records which
//! one is in use in `data_dir/models.json` (with the ones used before it, so `rollback` can go
//! back); the service loads that one at start instead of `model`. A model directory may hold a
//! machine-readable card, `card.json` ([`ModelCard`]): its version, and which training exports
//! (by their manifests' `exported_at`) and how many consented items per language trained it.
//! `/api/v1/models` shows it, and the access document tells a user whether their items (their
//! audit log's `training_export` entries) trained the version in use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::ServerConfig;

/// The record of the version in use, in the data directory.
const ACTIVE_FILE: &str = "models.json";

/// One gate's CIDEr-D before and after a fine-tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateFigures {
    /// The version it was fine-tuned from.
    pub before: f64,
    /// This version.
    pub after: f64,
}

/// `card.json`: what a model version's card says in figures (the prose is in `MODEL_CARD.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ModelCard {
    /// The version (as `config.json`'s `model_version`).
    pub version: String,
    /// The version it was fine-tuned from, if any.
    pub base: Option<String>,
    /// The training exports that trained it (or an ancestor), by their manifests' `exported_at`.
    pub training_exports: Vec<String>,
    /// Consented items per language that trained it (the exports' train splits).
    pub consented_items_per_language: BTreeMap<String, u64>,
    /// CIDEr-D per evaluation gate (`flickr8k_dev`, `coco_dev`, `consented_held_back`, ...).
    pub gates: BTreeMap<String, GateFigures>,
}

impl ModelCard {
    /// The card of a model directory: `None` without `card.json` (or for an `hf:` model).
    pub fn of(model: &str) -> anyhow::Result<Option<ModelCard>> {
        let path = Path::new(model).join("card.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a model card", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// `data_dir/models.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Active {
    /// The model directory in use.
    pub active: PathBuf,
    /// The ones in use before, oldest first (`rollback` goes back to the last).
    pub previous: Vec<PathBuf>,
}

/// A model version found in the models directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// Its directory's name.
    pub name: String,
    pub path: PathBuf,
    pub card: Option<ModelCard>,
    pub active: bool,
}

/// The models directory and the active record of a configuration.
#[derive(Debug, Clone)]
pub struct Registry {
    pub dir: PathBuf,
    active_file: PathBuf,
    configured: PathBuf,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Registry {
    /// `dir`, or the directory holding the configured `model`.
    pub fn new(config: &ServerConfig, dir: Option<&Path>) -> Registry {
        let configured = absolute(Path::new(&config.model));
        let dir = match dir {
            Some(d) => absolute(d),
            None => configured
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        Registry {
            dir,
            active_file: config.data_dir.join(ACTIVE_FILE),
            configured,
        }
    }

    /// The promoted record, if a version was ever promoted.
    pub fn record(&self) -> anyhow::Result<Option<Active>> {
        match std::fs::read_to_string(&self.active_file) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not a models record", self.active_file.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.active_file.display())),
        }
    }

    /// The model directory in use: the promoted one, else the configured `model`.
    pub fn active(&self) -> anyhow::Result<PathBuf> {
        Ok(self
            .record()?
            .map(|a| a.active)
            .unwrap_or_else(|| self.configured.clone()))
    }

    /// The caption models in the directory (a `config.json` and an encoder each), by name.
    pub fn list(&self) -> anyhow::Result<Vec<Version>> {
        let active = self.active()?;
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?;
        for e in entries {
            let path = e?.path();
            if !path.join("config.json").is_file() || !path.join("encoder_model.onnx").is_file() {
                continue;
            }
            out.push(Version {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                card: ModelCard::of(&path.to_string_lossy())?,
                active: path == active,
                path,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Makes version `name` the one in use (from the next start of the service).
    pub fn promote(&self, name: &str) -> anyhow::Result<Version> {
        let Some(v) = self.list()?.into_iter().find(|v| v.name == name) else {
            bail!("no model version {name:?} in {}", self.dir.display());
        };
        if !v.path.join("MODEL_CARD.md").is_file() && v.card.is_none() {
            bail!("{name} has no card (MODEL_CARD.md or card.json): every model in use has one");
        }
        let mut record = self.record()?.unwrap_or_default();
        let current = self.active()?;
        if current == v.path {
            bail!("{name} is already in use");
        }
        record.previous.push(current);
        record.active = v.path.clone();
        self.write(&record)?;
        Ok(v)
    }

    /// Goes back to the version in use before the last promotion; the directory now in use.
    pub fn rollback(&self) -> anyhow::Result<PathBuf> {
        let mut record = self
            .record()?
            .context("nothing to roll back: no version was ever promoted")?;
        let Some(back) = record.previous.pop() else {
            bail!("nothing to roll back: no earlier version recorded");
        };
        record.active = back.clone();
        self.write(&record)?;
        Ok(back)
    }

    fn write(&self, record: &Active) -> anyhow::Result<()> {
        if let Some(d) = self.active_file.parent() {
            std::fs::create_dir_all(d)?;
        }
        // Written whole, then renamed: a service starting meanwhile reads the old or the new.
        let tmp = self.active_file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)?;
        std::fs::rename(&tmp, &self.active_file)?;
        Ok(())
    }
}

/// The model the service loads: the promoted version when there is one, else `model`
/// (an `hf:` model is used as configured).
pub fn model_to_load(config: &ServerConfig) -> anyhow::Result<String> {
    if config.model.starts_with("hf:") {
        return Ok(config.model.clone());
    }
    let reg = Registry::new(config, None);
    Ok(match reg.record()? {
        Some(a) => a.active.to_string_lossy().into_owned(),
        None => config.model.clone(),
    })
}
