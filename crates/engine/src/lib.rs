//! Takarir's captioning engine: image → caption with encoder–decoder ONNX models.
//!
//! The engine owns everything between image bytes and caption text, and nothing about how it is
//! served: no HTTP, no storage. Its parts, in the order a request passes through them:
//! - [`runtime`] finds and loads the ONNX Runtime shared library once per process;
//! - [`model`] resolves a model (a directory in the Hugging Face Optimum layout, or `hf:ORG/NAME`)
//!   and reads its JSON configuration ([`config`]);
//! - [`image`] decodes from memory with limits, applies EXIF orientation, pre-processes;
//! - [`onnx`] runs the encoder and the KV-cached decoder;
//! - [`generate`] is the decoding loop (greedy, beam search, sampling, logits processors);
//! - [`vision`] is the object detector and the ImageNet tagger of a vision bundle, and
//!   [`grounding`] checks captions against what they see (and writes templates when needed);
//! - [`Captioner`] ties them together and is what callers use. One `Captioner` holds one
//!   session per graph and is shared by all requests (`Send + Sync`).
//! - [`text`] reads the words in a picture (detector, orientation, recogniser) and composes
//!   captions that quote them; [`TextReader`] is loaded apart from the captioner, only when
//!   text is asked for.

pub mod captioner;
pub mod config;
pub mod error;
pub mod generate;
pub mod grounding;
pub mod image;
pub mod model;
pub mod onnx;
pub mod runtime;
pub mod text;
pub mod vision;

pub use captioner::{
    Caption, CaptionOptions, Captioner, CaptionerOptions, Features, ImageCaptions, ModelInfo,
    Prepared, Timings, VisionSource,
};
pub use error::{EngineError, Result};
pub use image::{ImageLimits, ImageMetadata};
pub use text::{
    compose_caption, Layout, LazyTextReader, TextLine, TextReader, TextReaderOptions, TextResult,
};
