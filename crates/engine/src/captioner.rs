//! The captioner: what the CLI and the server call.
//!
//! `Captioner::load` resolves the model, opens its graphs once and reads its configuration;
//! `caption_images` takes image bytes and returns one result per image, so one bad file never
//! sinks the others. Good images of a call are encoded together in one encoder run and decoded
//! together in one generation loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::{load_generation_config, ModelConfig, PreprocessorConfig};
use crate::error::{EngineError, Result};
use crate::generate::{generate, EarlyStopping, GenerationConfig, Hypothesis, StepModel};
use crate::grounding::{Evidence, Grounder, GroundingParams, Review, Source};
use crate::image::{decode, preprocess, DecodedImage, ImageLimits, ImageMetadata};
use crate::model::ModelFiles;
use crate::onnx::OnnxModel;
use crate::text::{TextReader, TextResult};
use crate::vision::{DetectedObject, ImageTag, Seen, Vision, VisionInput};

/// How to load a model.
#[derive(Debug, Clone)]
pub struct CaptionerOptions {
    /// A model directory, or `hf:ORG/NAME[@REV]`.
    pub model: String,
    /// ONNX Runtime intra-op threads per graph.
    pub threads: usize,
    /// Use `*_quantized.onnx` graphs when both kinds exist.
    pub prefer_quantized: bool,
    /// Explicit path of `libonnxruntime` (otherwise found as [`crate::runtime`] describes).
    pub ort_library: Option<PathBuf>,
    /// Input limits.
    pub limits: ImageLimits,
    /// Where the detector and tagger come from (see [`crate::vision`]).
    pub vision: VisionSource,
}

/// Which vision bundle (detector, tagger and lexicon) a captioner uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum VisionSource {
    /// The model directory's own, when it is a bundle (the default model is); none otherwise.
    #[default]
    Auto,
    /// The bundle in this directory.
    Dir(PathBuf),
    /// None: captions are not grounded and objects and tags are unavailable.
    Off,
}

impl CaptionerOptions {
    /// Options for a model with the default threads and limits.
    pub fn new(model: impl Into<String>) -> Self {
        CaptionerOptions {
            model: model.into(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            prefer_quantized: false,
            ort_library: None,
            limits: ImageLimits::default(),
            vision: VisionSource::Auto,
        }
    }
}

/// Per-call overrides of the model's `generation_config.json`. `None` keeps the model's value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptionOptions {
    /// Caption language (`id`, `en`, ...) for multilingual models.
    pub lang: Option<String>,
    /// Beam width (1 = greedy or sampling).
    pub num_beams: Option<usize>,
    /// Largest number of generated tokens.
    pub max_new_tokens: Option<usize>,
    /// Smallest number of generated tokens before EOS.
    pub min_new_tokens: Option<usize>,
    /// Beam length penalty exponent (> 0 favours longer captions).
    pub length_penalty: Option<f64>,
    /// Stop beam search as soon as enough beams finish.
    pub early_stopping: Option<bool>,
    /// Sample instead of searching.
    pub do_sample: Option<bool>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Sampling top-k.
    pub top_k: Option<usize>,
    /// Sampling nucleus mass.
    pub top_p: Option<f32>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Forbid repeated n-grams of this size.
    pub no_repeat_ngram_size: Option<usize>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f32>,
    /// Captions returned per image.
    pub num_return_sequences: Option<usize>,
    /// Check captions against the detector and the tagger (default: on when the model has them).
    pub grounded: Option<bool>,
}

/// What to compute per image besides captions (Azure's `features=caption,tags,objects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// Captions (one list per option set).
    pub caption: bool,
    /// Detected objects with boxes.
    pub objects: bool,
    /// Everyday tags.
    pub tags: bool,
}

impl Features {
    /// Captions only.
    pub const CAPTION: Features = Features {
        caption: true,
        objects: false,
        tags: false,
    };
}

/// One caption.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Caption {
    /// The caption text.
    pub text: String,
    /// Language code, when the model is multilingual or declares one.
    pub lang: Option<String>,
    /// The captioner's raw log-probability score: beam score (length-penalised mean
    /// log-probability) or summed log-probability; for a template, its length-penalised
    /// log-probability under the captioner.
    pub score: f32,
    /// Generated token ids, decoder start token first.
    pub tokens: Vec<u32>,
    /// Calibrated chance (0..1) that the caption names no object that is not there (grounded
    /// captions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// Whether a person should check the caption before using it as alt text: low confidence,
    /// or the caption and the detected objects disagree (grounded captions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_review: Option<bool>,
    /// Where the text came from (grounded captions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The features `confidence` was computed from (for calibrating on dev sets).
    #[serde(skip)]
    pub review_features: Vec<f32>,
}

/// Where the time went for one call, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Decoding the files and pre-processing pixels.
    pub preprocess_ms: f64,
    /// The encoder runs.
    pub encode_ms: f64,
    /// Encoder runs (one per batch of same-size images, whatever the number of languages).
    pub encoder_runs: usize,
    /// The generation loop (and grounding's re-decoding and template scoring).
    pub generate_ms: f64,
    /// The detector and the tagger.
    pub vision_ms: f64,
    /// Decoder steps taken.
    pub decoder_steps: usize,
    /// Text reading (detector, orientation, recogniser), when asked for.
    pub text_ms: f64,
}

/// The captions of one image and what is known about the image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCaptions {
    /// Best first.
    pub captions: Vec<Caption>,
    /// Upright width.
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// Container format.
    pub format: &'static str,
    /// EXIF summary (no GPS values).
    pub metadata: ImageMetadata,
    /// Detected objects, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<DetectedObject>>,
    /// Tags, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<ImageTag>>,
    /// The text read in the image, when a text reader was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextResult>,
}

/// Model identity for display and APIs.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Directory name or `hf:` spec.
    pub name: String,
    /// `model_type` from config.json.
    pub model_type: String,
    /// Languages it captions in.
    pub languages: Vec<String>,
    /// `model_version` from config.json, or `unversioned`; `+int8` when quantized graphs run.
    pub version: String,
    /// Whether int8 graphs are in use.
    pub quantized: bool,
    /// Time to open the graphs, in milliseconds.
    pub load_ms: f64,
    /// Whether a detector and a tagger are loaded (captions grounded, objects and tags available).
    pub vision: bool,
}

/// A loaded model, ready to caption. `Send + Sync`: share one per process.
pub struct Captioner {
    onnx: OnnxModel,
    tokenizer: tokenizers::Tokenizer,
    model_config: ModelConfig,
    generation: GenerationConfig,
    preprocessor: PreprocessorConfig,
    limits: ImageLimits,
    dir: PathBuf,
    info: ModelInfo,
    vision: Option<Vision>,
    grounding: GroundingParams,
}

/// A step counter around the real decoder, for timings.
struct Counting<'a, M: crate::generate::StepModel>(&'a mut M, usize);

impl<M: crate::generate::StepModel> crate::generate::StepModel for Counting<'_, M> {
    fn step(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.1 += 1;
        self.0.step(tokens)
    }
    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        self.0.reorder(rows)
    }
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
}

impl Captioner {
    /// Resolves and opens a model.
    pub fn load(opts: &CaptionerOptions) -> Result<Self> {
        let started = Instant::now();
        crate::runtime::environment(opts.ort_library.as_deref())?;
        let files = ModelFiles::resolve(&opts.model, opts.prefer_quantized)?;
        let model_config = ModelConfig::load(&files.dir)?;
        let generation = load_generation_config(&files.dir, &model_config)?;
        let preprocessor = PreprocessorConfig::load(&files.dir)?;
        let tok_path = files.dir.join("tokenizer.json");
        let tokenizer = tokenizers::Tokenizer::from_file(&tok_path)
            .map_err(|e| EngineError::model(&tok_path, format!("unreadable tokenizer: {e}")))?;
        for (lang, token) in &model_config.languages {
            if tokenizer.token_to_id(token).is_none() {
                return Err(EngineError::model(
                    &tok_path,
                    format!("language {lang}: token {token} not in the vocabulary"),
                ));
            }
        }
        let onnx = OnnxModel::load(
            &files,
            opts.threads,
            tokenizer.get_vocab_size(true),
            model_config.decoder_heads,
            model_config.decoder_head_dim,
        )?;
        let name = match opts.model.strip_prefix("hf:") {
            Some(_) => opts.model.clone(),
            None => std::fs::canonicalize(&files.dir)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| opts.model.clone()),
        };
        let languages = if model_config.languages.is_empty() {
            vec!["en".to_string()]
        } else {
            model_config.languages.keys().cloned().collect()
        };
        let version = format!(
            "{}{}",
            model_config.version.as_deref().unwrap_or("unversioned"),
            if files.quantized { "+int8" } else { "" }
        );
        let vision_dir = match &opts.vision {
            VisionSource::Auto => Some(files.dir.clone()).filter(|d| Vision::is_bundle(d)),
            VisionSource::Dir(d) => Some(d.clone()),
            VisionSource::Off => None,
        };
        let vision = vision_dir
            .map(|d| Vision::load(&d, opts.threads))
            .transpose()?;
        let grounding = vision
            .as_ref()
            .map(|v| GroundingParams::load(v.dir()))
            .transpose()?
            .unwrap_or_default();
        let info = ModelInfo {
            name,
            version,
            model_type: model_config.model_type.clone(),
            languages,
            quantized: files.quantized,
            load_ms: started.elapsed().as_secs_f64() * 1000.0,
            vision: vision.is_some(),
        };
        Ok(Captioner {
            onnx,
            tokenizer,
            model_config,
            generation,
            preprocessor,
            limits: opts.limits,
            dir: files.dir.clone(),
            info,
            vision,
            grounding,
        })
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's directory (for `hf:` models, the local cache's copy). Other models that go
    /// with it (the text reader's `text/`) are found beside it.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The input limits images are decoded with.
    pub fn limits(&self) -> &ImageLimits {
        &self.limits
    }

    /// The model's defaults (from `generation_config.json`).
    pub fn default_generation(&self) -> &GenerationConfig {
        &self.generation
    }

    /// The language used when a call names none: Indonesian first, then English, then any.
    pub fn default_language(&self) -> &str {
        let l = &self.info.languages;
        ["id", "en"]
            .into_iter()
            .find(|x| l.iter().any(|y| y == x))
            .unwrap_or(&l[0])
    }

    /// The generation settings a call will use.
    pub fn generation_config(
        &self,
        o: &CaptionOptions,
    ) -> Result<(GenerationConfig, Option<String>)> {
        let mut g = self.generation.clone();
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { g.$f = v; } )* };
        }
        set!(
            num_beams,
            max_new_tokens,
            min_new_tokens,
            length_penalty,
            do_sample,
            temperature,
            top_k,
            top_p,
            seed
        );
        set!(
            no_repeat_ngram_size,
            repetition_penalty,
            num_return_sequences
        );
        if let Some(e) = o.early_stopping {
            g.early_stopping = if e {
                EarlyStopping::True
            } else {
                EarlyStopping::False
            };
        }
        if o.num_beams.is_some() && o.num_return_sequences.is_none() {
            g.num_return_sequences = g.num_return_sequences.min(g.num_beams.max(1));
        }
        let lang = o
            .lang
            .clone()
            .unwrap_or_else(|| self.default_language().to_string());
        if !self.info.languages.contains(&lang) {
            return Err(EngineError::UnsupportedLanguage {
                lang,
                supported: self.info.languages.clone(),
            });
        }
        if let Some(token) = self.model_config.languages.get(&lang) {
            g.forced_first_token = self.tokenizer.token_to_id(token);
        }
        g.validate()?;
        Ok((g, Some(lang)))
    }

    /// Decodes and pre-processes one image (no model work).
    pub fn prepare(&self, bytes: &[u8]) -> Result<Prepared> {
        self.prepare_decoded(decode(bytes, &self.limits)?, false)
    }

    /// Pre-processes an image decoded with [`crate::image::decode`] (with the vision networks'
    /// inputs too when `vision` and loaded), for callers that also hand the pixels to another
    /// reader (the text reader) and decode the file once.
    pub fn prepare_decoded(&self, img: DecodedImage, vision: bool) -> Result<Prepared> {
        let (pixels, h, w) = preprocess(&img.rgb, &self.preprocessor)?;
        let vision_input = match (&self.vision, vision) {
            (Some(v), true) => Some(v.inputs(&img.rgb)?),
            _ => None,
        };
        Ok(Prepared {
            pixels,
            height: h as usize,
            width: w as usize,
            image_width: img.rgb.width(),
            image_height: img.rgb.height(),
            format: img.format,
            metadata: img.metadata,
            vision_input,
        })
    }

    /// The vision bundle, when loaded.
    pub fn vision(&self) -> Option<&Vision> {
        self.vision.as_ref()
    }

    /// The grounding thresholds in use.
    pub fn grounding(&self) -> &GroundingParams {
        &self.grounding
    }

    /// Captions pre-processed images with fully specified generation settings.
    pub fn caption_with_config(
        &self,
        prepared: &[&Prepared],
        g: &GenerationConfig,
        lang: Option<String>,
        timings: &mut Timings,
    ) -> Result<Vec<Vec<Caption>>> {
        if prepared.is_empty() {
            return Ok(vec![]);
        }
        let (states, shape) = self.encode(prepared, timings)?;
        self.generate_from(&states, shape, g, lang, timings)
    }

    /// One encoder run over images of one size: the states and their `[batch, seq, dim]` shape.
    fn encode(
        &self,
        prepared: &[&Prepared],
        timings: &mut Timings,
    ) -> Result<(Vec<f32>, [usize; 3])> {
        let (h, w) = (prepared[0].height, prepared[0].width);
        let mut pixels = Vec::with_capacity(prepared.len() * 3 * h * w);
        for p in prepared {
            if (p.height, p.width) != (h, w) {
                return Err(EngineError::InvalidOption(
                    "images of one batch must share a size".into(),
                ));
            }
            pixels.extend_from_slice(&p.pixels);
        }
        let t = Instant::now();
        let encoded = self.onnx.encode(&pixels, prepared.len(), h, w)?;
        timings.encode_ms += t.elapsed().as_secs_f64() * 1000.0;
        timings.encoder_runs += 1;
        Ok(encoded)
    }

    /// Generates captions from encoder states with `g`: one list per image.
    fn generate_from(
        &self,
        states: &[f32],
        shape: [usize; 3],
        g: &GenerationConfig,
        lang: Option<String>,
        timings: &mut Timings,
    ) -> Result<Vec<Vec<Caption>>> {
        let t = Instant::now();
        let rows_per_item = if g.num_beams > 1 {
            g.num_beams
        } else if g.do_sample {
            g.num_return_sequences
        } else {
            1
        };
        let mut dec = self.onnx.decoder(states, shape, rows_per_item);
        let mut counting = Counting(&mut dec, 0);
        let hyps = generate(&mut counting, shape[0], g)?;
        timings.decoder_steps += counting.1;
        timings.generate_ms += t.elapsed().as_secs_f64() * 1000.0;
        Ok(hyps
            .into_iter()
            .map(|item| {
                item.into_iter()
                    .map(|h| self.to_caption(h, lang.clone()))
                    .collect()
            })
            .collect())
    }

    fn to_caption(&self, h: Hypothesis, lang: Option<String>) -> Caption {
        let text = self
            .tokenizer
            .decode(&h.tokens, true)
            .unwrap_or_default()
            .trim()
            .to_string();
        Caption {
            text,
            lang,
            score: h.score,
            tokens: h.tokens,
            confidence: None,
            needs_review: None,
            source: None,
            review_features: vec![],
        }
    }

    /// Captions several images given as file bytes: one result per image, in order. Images
    /// that fail to decode get their own error; the others are captioned together.
    pub fn caption_images(
        &self,
        images: &[&[u8]],
        opts: &CaptionOptions,
    ) -> (Vec<Result<ImageCaptions>>, Timings) {
        self.caption_images_each(images, std::slice::from_ref(opts))
    }

    /// [`Captioner::caption_images`] once per option set (one per language, say), each image
    /// decoded and encoded once: an image's captions are those of every option set in turn.
    pub fn caption_images_each(
        &self,
        images: &[&[u8]],
        opts: &[CaptionOptions],
    ) -> (Vec<Result<ImageCaptions>>, Timings) {
        self.analyze_images(images, opts, Features::CAPTION)
    }

    /// Captions (one list per option set), objects and tags of several images, as `features`
    /// asks. Each image is decoded once and encoded once; one bad file never sinks the others.
    /// Captions are grounded (see [`crate::grounding`]) unless an option set turns it off or
    /// the model has no vision bundle; asking for objects or tags without one is an error.
    pub fn analyze_images(
        &self,
        images: &[&[u8]],
        opts: &[CaptionOptions],
        features: Features,
    ) -> (Vec<Result<ImageCaptions>>, Timings) {
        self.analyze_images_reading(images, opts, features, None)
    }

    /// [`Captioner::analyze_images`], and with a text reader, the text of each image too
    /// ([`ImageCaptions::text`]), read from the same decoded pixels (each file is decoded
    /// once). A failure to read an image's text is that image's error.
    pub fn analyze_images_reading(
        &self,
        images: &[&[u8]],
        opts: &[CaptionOptions],
        features: Features,
        text: Option<&TextReader>,
    ) -> (Vec<Result<ImageCaptions>>, Timings) {
        let mut timings = Timings::default();
        if (features.objects || features.tags) && self.vision.is_none() {
            let err = EngineError::InvalidOption(
                "objects and tags need a model with a detector and a tagger".into(),
            );
            return (
                images.iter().map(|_| Err(err.duplicate())).collect(),
                timings,
            );
        }
        let grounded = |o: &CaptionOptions| self.vision.is_some() && o.grounded.unwrap_or(true);
        let need_vision = self.vision.is_some()
            && (features.objects
                || features.tags
                || (features.caption && opts.iter().any(grounded)));
        let mut texts: Vec<Option<TextResult>> = Vec::with_capacity(images.len());
        let mut text_ms = 0.0;
        let t = Instant::now();
        let prepared: Vec<Result<Prepared>> = images
            .iter()
            .map(|b| {
                texts.push(None);
                let img = decode(b, &self.limits)?;
                if let Some(reader) = text {
                    let t = Instant::now();
                    let read = reader.read_rgb(&img.rgb);
                    text_ms += t.elapsed().as_secs_f64() * 1000.0;
                    *texts.last_mut().expect("pushed above") = Some(read?);
                }
                self.prepare_decoded(img, need_vision)
            })
            .collect();
        timings.preprocess_ms = t.elapsed().as_secs_f64() * 1000.0 - text_ms;
        timings.text_ms = text_ms;
        // Group the good images by tensor size (fixed-size models have one group).
        let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, p) in prepared.iter().enumerate() {
            if let Ok(p) = p {
                groups.entry((p.height, p.width)).or_default().push(i);
            }
        }
        let configs: Result<Vec<_>> = opts
            .iter()
            .map(|o| {
                let (mut g, lang) = self.generation_config(o)?;
                if grounded(o) && g.num_beams > 1 {
                    // Grounding chooses among the beam's best few; the caller still gets at most
                    // as many as asked for.
                    g.num_return_sequences = g
                        .num_return_sequences
                        .max(self.grounding.alternatives.min(g.num_beams));
                }
                Ok((g, lang, grounded(o), o.num_return_sequences))
            })
            .collect();
        let mut results: Vec<Option<Result<Analysed>>> = (0..images.len()).map(|_| None).collect();
        for idx in groups.into_values() {
            let batch: Vec<&Prepared> = idx
                .iter()
                .map(|&i| prepared[i].as_ref().expect("grouped only Ok"))
                .collect();
            let analysed = configs
                .as_ref()
                .map_err(|e| e.duplicate())
                .and_then(|configs| self.analyse_batch(&batch, configs, features, &mut timings));
            match analysed {
                Ok(out) => idx
                    .iter()
                    .zip(out)
                    .for_each(|(&i, a)| results[i] = Some(Ok(a))),
                Err(e) => {
                    for &i in &idx {
                        results[i] = Some(Err(e.duplicate()));
                    }
                }
            }
        }
        let results = prepared
            .into_iter()
            .zip(results)
            .zip(texts)
            .map(|((p, a), text)| {
                let p = p?;
                let a = a.expect("every good image was analysed")?;
                let px = |f: f32, side: u32| (f * side as f32).round().max(0.0) as u32;
                let objects = a.objects.map(|dets| {
                    let classes = self
                        .vision
                        .as_ref()
                        .expect("objects need vision")
                        .lexicon()
                        .classes();
                    dets.into_iter()
                        .map(|d| {
                            let c = &classes[d.class];
                            let (x, y) =
                                (px(d.bbox.x0, p.image_width), px(d.bbox.y0, p.image_height));
                            DetectedObject {
                                name_en: c.en.clone(),
                                name_id: c.id.clone(),
                                class: c.name.clone(),
                                confidence: d.score,
                                bbox: [
                                    x,
                                    y,
                                    px(d.bbox.x1, p.image_width).saturating_sub(x),
                                    px(d.bbox.y1, p.image_height).saturating_sub(y),
                                ],
                            }
                        })
                        .collect()
                });
                Ok(ImageCaptions {
                    captions: a.captions,
                    width: p.image_width,
                    height: p.image_height,
                    format: p.format,
                    metadata: p.metadata,
                    objects,
                    tags: a.tags,
                    text,
                })
            })
            .collect();
        (results, timings)
    }

    /// One same-size batch: encoder once, vision once, then each option set's captions.
    fn analyse_batch(
        &self,
        batch: &[&Prepared],
        configs: &[(GenerationConfig, Option<String>, bool, Option<usize>)],
        features: Features,
        timings: &mut Timings,
    ) -> Result<Vec<Analysed>> {
        let seen: Option<Vec<Seen>> = match &self.vision {
            Some(v) if batch.iter().all(|p| p.vision_input.is_some()) => {
                let t = Instant::now();
                let inputs: Vec<&VisionInput> = batch
                    .iter()
                    .map(|p| p.vision_input.as_ref().expect("checked"))
                    .collect();
                let seen = v.see(&inputs)?;
                timings.vision_ms += t.elapsed().as_secs_f64() * 1000.0;
                Some(seen)
            }
            _ => None,
        };
        let grounder = self
            .vision
            .as_ref()
            .map(|v| Grounder::new(v, &self.grounding));
        let evidence: Option<Vec<Evidence>> = match (&grounder, &seen) {
            (Some(g), Some(seen)) => Some(seen.iter().map(|s| g.evidence(s)).collect()),
            _ => None,
        };
        let mut out: Vec<Analysed> = (0..batch.len())
            .map(|i| {
                let (objects, tags) = match (&grounder, &seen, &evidence) {
                    (Some(g), Some(seen), Some(ev)) => (
                        features.objects.then(|| g.objects(&ev[i], &seen[i])),
                        features.tags.then(|| {
                            g.tags(&ev[i])
                                .into_iter()
                                .map(|(name_en, name_id, confidence)| ImageTag {
                                    name_en,
                                    name_id,
                                    confidence,
                                })
                                .collect()
                        }),
                    ),
                    _ => (None, None),
                };
                Analysed {
                    captions: vec![],
                    objects,
                    tags,
                }
            })
            .collect();
        if !features.caption {
            return Ok(out);
        }
        let (states, shape) = self.encode(batch, timings)?;
        for (g, lang, grounded, asked) in configs {
            let captions = self.generate_from(&states, shape, g, lang.clone(), timings)?;
            for (i, alts) in captions.into_iter().enumerate() {
                let chosen = match (&grounder, &evidence, lang) {
                    (Some(gr), Some(ev), Some(l)) if *grounded && gr_knows(gr, l) => {
                        let item = ItemStates {
                            states: &states[i * shape[1] * shape[2]..(i + 1) * shape[1] * shape[2]],
                            shape: [1, shape[1], shape[2]],
                        };
                        self.ground(gr, &ev[i], alts, g, l, *asked, item, timings)?
                    }
                    _ => alts,
                };
                out[i].captions.extend(chosen);
            }
        }
        Ok(out)
    }

    /// Chooses, fixes or replaces one image's captions in one language (see [`crate::grounding`]).
    #[allow(clippy::too_many_arguments)]
    fn ground(
        &self,
        gr: &Grounder<'_>,
        ev: &Evidence,
        alts: Vec<Caption>,
        g: &GenerationConfig,
        lang: &str,
        asked: Option<usize>,
        item: ItemStates<'_>,
        timings: &mut Timings,
    ) -> Result<Vec<Caption>> {
        let lex = gr_lexicon(gr);
        let wanted = asked.unwrap_or(1).max(1).min(alts.len().max(1));
        let mut kept: Vec<(Caption, Source)> = alts
            .iter()
            .filter(|c| gr.accepts(ev, &c.text, lang))
            .map(|c| (c.clone(), Source::Model))
            .collect();
        if kept.is_empty() && gr.tag_first(ev) {
            if let Some(text) = gr.template(ev, lang) {
                let c = self.score_text(item, g, lang, &text, timings)?;
                kept.push((c, Source::Template));
            }
        }
        if kept.is_empty() {
            if !ev.out_of_domain {
                let banned = gr.banned(ev);
                let redo = self.decode_banned(item, g, lang, &banned, timings)?;
                if let Some(c) = redo.filter(|c| gr.accepts_constrained(ev, &c.text, lang)) {
                    kept.push((c, Source::Constrained));
                }
            }
            if kept.is_empty() {
                if let Some(text) = gr.template(ev, lang) {
                    let c = self.score_text(item, g, lang, &text, timings)?;
                    kept.push((c, Source::Template));
                }
            }
            if kept.is_empty() {
                // Nothing seen with confidence, and no caption free of unsupported objects: the
                // model's best, flagged for review below.
                kept.extend(alts.into_iter().take(1).map(|c| (c, Source::Model)));
            }
        }
        kept.truncate(wanted);
        let main = gr.ranked(ev).first().copied();
        Ok(kept
            .into_iter()
            .map(|(mut c, source)| {
                let f = Review::features(lex, ev, main, &c.text, lang, source, Some(c.score));
                let confidence = Review::confidence(&self.grounding, &f);
                let disagree = lex
                    .mentions(&c.text, lang)
                    .iter()
                    .any(|&k| !ev.supported[k]);
                c.confidence = Some(confidence);
                c.needs_review = Some(disagree || confidence < self.grounding.review_threshold);
                c.source = Some(source);
                c.review_features = f;
                c
            })
            .collect())
    }

    /// The bad-word token sequences that spell any phrase of `classes` in `lang`.
    fn banned_sequences(
        &self,
        lex: &crate::vision::Lexicon,
        classes: &[usize],
        lang: &str,
    ) -> Vec<Vec<u32>> {
        let mut out: Vec<Vec<u32>> = Vec::new();
        for &c in classes {
            for phrase in lex.phrases_of(c, lang) {
                // Both spellings: a word inside a caption (after a space) and at its start.
                for text in [phrase.clone(), format!(" {phrase}")] {
                    if let Ok(enc) = self.tokenizer.encode(text.as_str(), false) {
                        let ids = enc.get_ids().to_vec();
                        if !ids.is_empty() && !out.contains(&ids) {
                            out.push(ids);
                        }
                    }
                }
            }
        }
        out
    }

    /// One image decoded again with the words of `banned` classes forbidden.
    fn decode_banned(
        &self,
        item: ItemStates<'_>,
        g: &GenerationConfig,
        lang: &str,
        banned: &[usize],
        timings: &mut Timings,
    ) -> Result<Option<Caption>> {
        let Some(v) = &self.vision else {
            return Ok(None);
        };
        let mut g = g.clone();
        g.bad_words_ids
            .extend(self.banned_sequences(v.lexicon(), banned, lang));
        g.num_return_sequences = 1;
        let mut out =
            self.generate_from(item.states, item.shape, &g, Some(lang.to_string()), timings)?;
        Ok(out.pop().and_then(|mut c| c.pop()))
    }

    /// A caption for `text` (a template) scored by the captioner: its length-penalised
    /// log-probability, token by token with the cache, so that every caption carries one.
    fn score_text(
        &self,
        item: ItemStates<'_>,
        g: &GenerationConfig,
        lang: &str,
        text: &str,
        timings: &mut Timings,
    ) -> Result<Caption> {
        let t = Instant::now();
        let mut tokens = vec![g.decoder_start_token_id];
        tokens.extend(g.forced_first_token);
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| EngineError::Inference(format!("tokenizer: {e}")))?;
        let body: Vec<u32> = enc.get_ids().to_vec();
        let target: Vec<u32> = body
            .iter()
            .copied()
            .chain(g.eos_token_ids.first().copied())
            .collect();
        let mut dec = self.onnx.decoder(item.states, item.shape, 1);
        let mut logp = 0.0f32;
        let mut fed = tokens.clone();
        // Feed the start and the language token, then score each target token.
        let mut logits = dec.step(&fed[..1])?;
        for &forced in &fed.clone()[1..] {
            logits = dec.step(&[forced])?;
        }
        for &next in &target {
            crate::generate::log_softmax_in_place(&mut logits);
            logp += logits
                .get(next as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY);
            fed.push(next);
            if fed.len() > g.max_new_tokens + 2 {
                break;
            }
            logits = dec.step(&[next])?;
        }
        let generated = (fed.len() - 1).max(1) as f64;
        let score = logp / generated.powf(g.length_penalty) as f32;
        tokens.extend(body);
        tokens.extend(g.eos_token_ids.first().copied());
        timings.generate_ms += t.elapsed().as_secs_f64() * 1000.0;
        Ok(Caption {
            text: text.to_string(),
            lang: Some(lang.to_string()),
            score,
            tokens,
            confidence: None,
            needs_review: None,
            source: None,
            review_features: vec![],
        })
    }
}

/// Encoder states of one image of a batch.
#[derive(Clone, Copy)]
struct ItemStates<'a> {
    states: &'a [f32],
    shape: [usize; 3],
}

/// One image's results before they are joined with what decoding learned about the file.
struct Analysed {
    captions: Vec<Caption>,
    objects: Option<Vec<crate::vision::Detection>>,
    tags: Option<Vec<ImageTag>>,
}

fn gr_lexicon<'g>(gr: &'g Grounder<'_>) -> &'g crate::vision::Lexicon {
    gr.lexicon()
}

fn gr_knows(gr: &Grounder<'_>, lang: &str) -> bool {
    gr.lexicon().knows(lang)
}

/// A decoded, pre-processed image.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `[3, height, width]` float32, channels first.
    pub pixels: Vec<f32>,
    /// Tensor height.
    pub height: usize,
    /// Tensor width.
    pub width: usize,
    /// Upright image width.
    pub image_width: u32,
    /// Upright image height.
    pub image_height: u32,
    /// Container format.
    pub format: &'static str,
    /// EXIF summary.
    pub metadata: ImageMetadata,
    /// The detector's and tagger's inputs, when they will run.
    pub vision_input: Option<VisionInput>,
}
