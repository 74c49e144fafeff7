//! The captioner: what the CLI and the server call.
//!
//! `Captioner::load` resolves the model, opens its graphs once and reads its configuration;
//! `caption_images` takes image bytes and returns one result per image, so one bad file never
//! sinks the others. Good images of a call are encoded together in one encoder run and decoded
//! together in one generation loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::config::{load_generation_config, ModelConfig, PreprocessorConfig};
use crate::error::{EngineError, Result};
use crate::generate::{generate, EarlyStopping, GenerationConfig, Hypothesis};
use crate::image::{decode, preprocess, DecodedImage, ImageLimits, ImageMetadata};
use crate::model::ModelFiles;
use crate::onnx::OnnxModel;

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
}

/// One caption.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Caption {
    /// The caption text.
    pub text: String,
    /// Language code, when the model is multilingual or declares one.
    pub lang: Option<String>,
    /// Beam score (length-penalised mean log-probability) or summed log-probability.
    pub score: f32,
    /// Generated token ids, decoder start token first.
    pub tokens: Vec<u32>,
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
    /// The generation loop.
    pub generate_ms: f64,
    /// Decoder steps taken.
    pub decoder_steps: usize,
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
}

/// A loaded model, ready to caption. `Send + Sync`: share one per process.
pub struct Captioner {
    onnx: OnnxModel,
    tokenizer: tokenizers::Tokenizer,
    model_config: ModelConfig,
    generation: GenerationConfig,
    preprocessor: PreprocessorConfig,
    limits: ImageLimits,
    info: ModelInfo,
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
        let info = ModelInfo {
            name,
            version,
            model_type: model_config.model_type.clone(),
            languages,
            quantized: files.quantized,
            load_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        Ok(Captioner {
            onnx,
            tokenizer,
            model_config,
            generation,
            preprocessor,
            limits: opts.limits,
            info,
        })
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
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
        self.prepare_decoded(decode(bytes, &self.limits)?)
    }

    /// Pre-processes an image decoded with [`crate::image::decode`], for callers that also hand
    /// the pixels to another reader (the text reader) and decode the file once.
    pub fn prepare_decoded(&self, img: DecodedImage) -> Result<Prepared> {
        let (pixels, h, w) = preprocess(&img.rgb, &self.preprocessor)?;
        Ok(Prepared {
            pixels,
            height: h as usize,
            width: w as usize,
            image_width: img.rgb.width(),
            image_height: img.rgb.height(),
            format: img.format,
            metadata: img.metadata,
        })
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
        let mut timings = Timings::default();
        let t = Instant::now();
        let prepared: Vec<Result<Prepared>> = images.iter().map(|b| self.prepare(b)).collect();
        timings.preprocess_ms = t.elapsed().as_secs_f64() * 1000.0;
        // Group the good images by tensor size (fixed-size models have one group).
        let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (i, p) in prepared.iter().enumerate() {
            if let Ok(p) = p {
                groups.entry((p.height, p.width)).or_default().push(i);
            }
        }
        let configs: Result<Vec<_>> = opts.iter().map(|o| self.generation_config(o)).collect();
        let mut captions: Vec<Option<Result<Vec<Caption>>>> =
            (0..images.len()).map(|_| None).collect();
        for idx in groups.into_values() {
            let batch: Vec<&Prepared> = idx
                .iter()
                .map(|&i| prepared[i].as_ref().expect("grouped only Ok"))
                .collect();
            let captioned = configs
                .as_ref()
                .map_err(|e| e.duplicate())
                .and_then(|configs| {
                    let (states, shape) = self.encode(&batch, &mut timings)?;
                    let mut per_image: Vec<Vec<Caption>> = vec![Vec::new(); batch.len()];
                    for (g, lang) in configs {
                        let out =
                            self.generate_from(&states, shape, g, lang.clone(), &mut timings)?;
                        per_image
                            .iter_mut()
                            .zip(out)
                            .for_each(|(acc, c)| acc.extend(c));
                    }
                    Ok(per_image)
                });
            match captioned {
                Ok(out) => idx
                    .iter()
                    .zip(out)
                    .for_each(|(&i, c)| captions[i] = Some(Ok(c))),
                Err(e) => {
                    for &i in &idx {
                        captions[i] = Some(Err(e.duplicate()));
                    }
                }
            }
        }
        let results = prepared
            .into_iter()
            .zip(captions)
            .map(|(p, c)| {
                let p = p?;
                let captions = c.expect("every good image was captioned")?;
                Ok(ImageCaptions {
                    captions,
                    width: p.image_width,
                    height: p.image_height,
                    format: p.format,
                    metadata: p.metadata,
                })
            })
            .collect();
        (results, timings)
    }
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
}
