//! `takarir caption --server URL`: the same files and output formats, captioned by a Takarir
//! service as one batch job (uploaded once, progress polled, results fetched as JSONL).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::caption::csv_field;

/// What the remote run needs from `caption`'s arguments.
pub struct Remote<'a> {
    pub server: &'a str,
    /// Sent as a bearer token with the job, which then belongs to the key's account.
    pub api_key: Option<&'a str>,
    pub files: &'a [PathBuf],
    pub lang: Option<&'a str>,
    pub alternatives: Option<usize>,
    pub format: super::caption::OutputFormat,
    pub sidecar: bool,
}

pub fn run(r: Remote<'_>) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(r))
}

async fn run_async(r: Remote<'_>) -> anyhow::Result<i32> {
    use super::caption::OutputFormat as F;
    let base = r.server.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut form = reqwest::multipart::Form::new();
    if let Some(l) = r.lang {
        form = form.text("lang", l.to_string());
    }
    if let Some(n) = r.alternatives {
        form = form.text("alternatives", n.to_string());
    }
    // Files that cannot be read locally get their error line here; the rest are uploaded.
    let mut failed = 0usize;
    let mut sent: Vec<&PathBuf> = Vec::new();
    for p in r.files {
        match std::fs::read(p) {
            Ok(bytes) => {
                form = form.part(
                    "image",
                    reqwest::multipart::Part::bytes(bytes).file_name(p.display().to_string()),
                );
                sent.push(p);
            }
            Err(e) => {
                failed += 1;
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
    let bar = ProgressBar::with_draw_target(Some(sent.len() as u64), ProgressDrawTarget::stderr());
    if sent.len() <= 3 {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} ETA {eta}")
            .expect("valid template"),
    );
    loop {
        let s: Value = client
            .get(format!("{base}/api/v1/jobs/{id}"))
            .send()
            .await?
            .error_for_status()?
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
    let jsonl = client
        .get(format!("{base}/api/v1/jobs/{id}/results?format=jsonl"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all = Vec::new();
    if r.format == F::Csv {
        writeln!(out, "file,lang,rank,caption,score,error")?;
    }
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line)?;
        let idx = row["index"].as_u64().unwrap_or(u64::MAX) as usize;
        let Some(path) = sent.get(idx) else { continue };
        let file = path.display().to_string();
        let captions = row["captions"].as_array().cloned().unwrap_or_default();
        let error = row.get("error").map(|e| {
            format!(
                "{} ({})",
                e["detail"].as_str().unwrap_or_default(),
                e["code"].as_str().unwrap_or_default()
            )
        });
        if let Some(e) = &error {
            failed += 1;
            eprintln!("error: {file}: {e}");
        } else if r.sidecar {
            if let Some(best) = captions.first().and_then(|c| c["text"].as_str()) {
                let side = path.with_extension("txt");
                if let Err(e) = std::fs::write(&side, format!("{best}\n")) {
                    failed += 1;
                    eprintln!("error: {}: {e}", side.display());
                }
            }
        }
        let record = match &error {
            None => json!({
                "file": file,
                "captions": captions,
                "width": row["image"]["width"],
                "height": row["image"]["height"],
                "format": row["image"]["format"],
            }),
            Some(e) => json!({"file": file, "error": e}),
        };
        match r.format {
            F::Text => {
                for c in &captions {
                    writeln!(out, "{file}\t{}", c["text"].as_str().unwrap_or_default())?;
                }
            }
            F::Jsonl => writeln!(out, "{record}")?,
            F::Json => all.push(record),
            F::Csv => match &error {
                None => {
                    for (rank, c) in captions.iter().enumerate() {
                        writeln!(
                            out,
                            "{},{},{},{},{:.4},",
                            csv_field(&file),
                            c["lang"].as_str().unwrap_or_default(),
                            rank + 1,
                            csv_field(c["text"].as_str().unwrap_or_default()),
                            c["score"].as_f64().unwrap_or_default()
                        )?;
                    }
                }
                Some(e) => writeln!(out, "{},,,,,{}", csv_field(&file), csv_field(e))?,
            },
        }
    }
    if r.format == F::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    }
    // The job's results are no longer needed on the server.
    let _ = client
        .delete(format!("{base}/api/v1/jobs/{id}"))
        .send()
        .await;
    Ok(if failed > 0 { 1 } else { 0 })
}
