//! Result records: one per file of a batch job (its JSONL line), and the ways they are written
//! out: the CSV (one writer and one header for the job results and the CLI, with spreadsheet
//! formulas defused) and the ZIP of `.txt` sidecars.

use std::collections::HashMap;
use std::io::{Cursor, Write};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Problem;
use crate::service::captioning::{
    BatchItem, CaptionOut, ImageOut, MetadataOut, ObjectOut, TagOut, TextOut,
};

/// One file's result: captions, or its problem.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemRecord {
    /// The file's place in the upload (0-based).
    pub index: i64,
    /// The file's name (for a ZIP entry, its path inside the archive).
    pub file: String,
    /// Captions, best first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captions: Option<Vec<CaptionOut>>,
    /// Detected objects, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ObjectOut>>,
    /// Tags, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagOut>>,
    /// The text in the image, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextOut>,
    /// Image facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOut>,
    /// EXIF summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOut>,
    /// The file's problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

impl ItemRecord {
    /// The record of file `index` named `file` with its outcome.
    pub fn new(index: i64, file: &str, item: BatchItem) -> ItemRecord {
        ItemRecord {
            index,
            file: file.to_string(),
            captions: item.captions,
            objects: item.objects,
            tags: item.tags,
            text: item.text,
            image: item.image,
            metadata: item.metadata,
            error: item.error,
        }
    }

    /// The JSONL line (without its newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The captions, or none.
    pub fn caption_list(&self) -> &[CaptionOut] {
        self.captions.as_deref().unwrap_or_default()
    }
}

/// The CSV columns, for every CSV of results: one row per caption (with its rank within the
/// file), or one row per failed file (with its error code and message).
pub const CSV_HEADER: [&str; 8] = [
    "index",
    "file",
    "lang",
    "rank",
    "caption",
    "score",
    "error_code",
    "error",
];

/// A cell a spreadsheet would not run: text that starts like a formula (`=`, `+`, `-`, `@`, a
/// tab or a carriage return) gets a leading apostrophe.
pub fn defuse(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// Writes result records as CSV ([`CSV_HEADER`]).
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> CsvWriter<W> {
    /// A writer that has written the header.
    pub fn new(w: W) -> csv::Result<Self> {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(CSV_HEADER)?;
        Ok(CsvWriter { out })
    }

    /// The rows of one record.
    pub fn write(&mut self, r: &ItemRecord) -> csv::Result<()> {
        let index = r.index.to_string();
        let file = defuse(&r.file);
        if let Some(e) = &r.error {
            let row = [
                &index,
                &file,
                "",
                "",
                "",
                "",
                &defuse(&e.code),
                &defuse(&e.detail),
            ];
            return self.out.write_record(row);
        }
        for (rank, c) in r.caption_list().iter().enumerate() {
            let rank = (rank + 1).to_string();
            let score = format!("{:.4}", c.score);
            let row = [
                &index,
                &file,
                &defuse(&c.lang),
                &rank,
                &defuse(&c.text),
                &score,
                "",
                "",
            ];
            self.out.write_record(row)?;
        }
        Ok(())
    }

    /// Flushes; the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// The records as one CSV text.
pub fn to_csv(records: &[ItemRecord]) -> csv::Result<Vec<u8>> {
    let mut w = CsvWriter::new(Vec::new())?;
    for r in records {
        w.write(r)?;
    }
    Ok(w.finish()?)
}

/// One `<name>.txt` per captioned image (its captions, one per line); failures listed in
/// `errors.txt`. Names are flattened and made unique.
pub fn to_sidecar_zip(records: &[ItemRecord]) -> zip::result::ZipResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut errors = String::new();
    for r in records {
        let file = if r.file.is_empty() { "image" } else { &r.file };
        if let Some(e) = &r.error {
            errors.push_str(&format!("{file}: {}\n", e.detail));
            continue;
        }
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let stem = base.rsplit_once('.').map(|(s, _)| s).unwrap_or(base);
        let stem: String = stem
            .chars()
            .map(|c| if c.is_control() || c == ':' { '_' } else { c })
            .collect();
        let stem = if stem.is_empty() {
            "image".into()
        } else {
            stem
        };
        let n = used.entry(stem.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            format!("{stem}.txt")
        } else {
            format!("{stem}-{n}.txt")
        };
        w.start_file(name, opts)?;
        for c in r.caption_list() {
            w.write_all(c.text.as_bytes())?;
            w.write_all(b"\n")?;
        }
    }
    if !errors.is_empty() {
        w.start_file("errors.txt", opts)?;
        w.write_all(errors.as_bytes())?;
    }
    Ok(w.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caption(text: &str) -> CaptionOut {
        CaptionOut {
            text: text.into(),
            lang: "en".into(),
            score: -1.5,
            confidence: None,
            needs_review: None,
            source: None,
            tokens: Vec::new(),
            review_features: Vec::new(),
        }
    }

    #[test]
    fn csv_has_one_header_and_defuses_formulas() {
        let ok = ItemRecord {
            index: 0,
            file: "=cmd|' /C calc'!A0.jpg".into(),
            captions: Some(vec![caption("a dog, \"happy\""), caption("-1 cats")]),
            objects: None,
            tags: None,
            text: None,
            image: None,
            metadata: None,
            error: None,
        };
        let bad = ItemRecord {
            index: 1,
            file: "b.jpg".into(),
            captions: None,
            objects: None,
            tags: None,
            text: None,
            image: None,
            metadata: None,
            error: Some(crate::error::ApiError::CorruptImage.problem(crate::i18n::Lang::En, "")),
        };
        let text = String::from_utf8(to_csv(&[ok, bad]).unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("index,file,lang,rank,caption,score,error_code,error")
        );
        assert_eq!(
            lines.next(),
            Some("0,'=cmd|' /C calc'!A0.jpg,en,1,\"a dog, \"\"happy\"\"\",-1.5000,,")
        );
        assert_eq!(
            lines.next(),
            Some("0,'=cmd|' /C calc'!A0.jpg,en,2,'-1 cats,-1.5000,,")
        );
        let last = lines.next().unwrap();
        assert!(last.starts_with("1,b.jpg,,,,,corrupt_image,"), "{last}");
        assert_eq!(lines.next(), None);
    }
}
