//! `takarir caption --server URL`: the same files and output formats, captioned by a Takarir
//! service as one batch job (uploaded once, progress polled, results fetched as JSONL records
//! and written as a local run writes them).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use takarir_server::service::jobs::records::ItemRecord;

use super::generation::OptionArgs;
use super::output::Output;

/// What the remote run needs from `caption`'s arguments.
pub struct Remote<'a> {
    pub server: &'a str,
    /// Sent as a bearer token with the job, which then belongs to the key's account.
    pub api_key: Option<&'a str>,
    pub files: &'a [PathBuf],
    /// Only the options given on the command line are sent: the others are the service's
    /// defaults, or the account's preferences for a job sent with a key.
    pub options: &'a OptionArgs,
    pub output: Output,
}

pub fn run(r: Remote<'_>) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(r))
}

async fn run_async(r: Remote<'_>) -> anyhow::Result<i32> {
    let mut output = r.output;
    let base = r.server.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut form = reqwest::multipart::Form::new();
    let o = r.options;
    let fields = [
        ("lang", o.lang.map(|l| l.to_string())),
        ("style", o.style.map(|s| s.to_string())),
        ("alternatives", o.alternatives.map(|n| n.to_string())),
        (
            "gender_neutral",
            o.gender_neutral.then(|| "true".to_string()),
        ),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            form = form.text(name, v);
        }
    }
    // Files that cannot be read locally get their error line here; the rest are uploaded.
    let mut sent: Vec<&PathBuf> = Vec::new();
    for p in r.files {
        match std::fs::read(p) {
            Ok(bytes) => {
                form = form.part(
                    "image",
                    // Only the base name: the server keeps no more, and results come back
                    // by index, matched to the local path here.
                    reqwest::multipart::Part::bytes(bytes).file_name(
                        p.file_name()
                            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned()),
                    ),
                );
                sent.push(p);
            }
            Err(e) => {
                output.count_failure();
                eprintln!("error: {}: {e}", p.display());
            }
        }
    }
    if sent.is_empty() {
        return Ok(1);
    }
    let mut req = client.post(format!("{base}/api/v1/jobs")).multipart(form);
    if let Some(key) = r.api_key {
        req = req.bearer_auth(key);
    }
    let res = req
        .send()
        .await
        .with_context(|| format!("sending the job to {base}"))?;
    if !res.status().is_success() {
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        bail!(
            "the server refused the job ({status}): {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    let created: Value = res.json().await?;
    let id = created["id"]
        .as_str()
        .context("no job id in the answer")?
        .to_string();
    let bar = super::output::progress(sent.len());
    loop {
        let s: Value = get(&client, r.api_key, format!("{base}/api/v1/jobs/{id}"))
            .await?
            .json()
            .await?;
        bar.set_position(
            (s["done"].as_u64().unwrap_or(0) + s["failed"].as_u64().unwrap_or(0))
                .min(sent.len() as u64),
        );
        if s["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bar.finish_and_clear();
    let results = format!("{base}/api/v1/jobs/{id}/results?format=jsonl");
    let jsonl = get(&client, r.api_key, results).await?.text().await?;
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let mut record: ItemRecord = serde_json::from_str(line)?;
        let Some(path) = usize::try_from(record.index).ok().and_then(|i| sent.get(i)) else {
            continue;
        };
        record.file = path.display().to_string();
        output.record(path, &record)?;
    }
    // The job's results are no longer needed on the server.
    let mut delete = client.delete(format!("{base}/api/v1/jobs/{id}"));
    if let Some(key) = r.api_key {
        delete = delete.bearer_auth(key);
    }
    let _ = delete.send().await;
    output.finish()
}

/// A GET that must succeed, with the key when there is one (a key's job answers only it).
async fn get(
    client: &reqwest::Client,
    key: Option<&str>,
    url: String,
) -> anyhow::Result<reqwest::Response> {
    let mut req = client.get(url);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    Ok(req.send().await?.error_for_status()?)
}
