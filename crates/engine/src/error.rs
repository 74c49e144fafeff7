//! Typed errors of the engine. Callers (CLI, server) map these to exit codes, HTTP statuses and
//! localised messages in one place each; the engine itself never formats for a user interface.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or captioning an image.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("{0}")]
    Runtime(String),
    /// The model directory is missing a file or has an unusable configuration.
    #[error("model at {path}: {reason}")]
    Model {
        /// Directory or file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `hf:` model could not be resolved (offline and not cached, unknown repository, ...).
    #[error("{0}")]
    Hub(String),
    /// ONNX Runtime failed while running the model.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The input file is larger than the configured limit.
    #[error("file is {size} bytes, over the {limit}-byte limit")]
    FileTooLarge {
        /// Actual size in bytes.
        size: u64,
        /// Limit in bytes.
        limit: u64,
    },
    /// The image has more pixels than allowed (also how decompression bombs are caught).
    #[error("image is {width}x{height} pixels, over the {limit_megapixels}-megapixel limit")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Limit in megapixels.
        limit_megapixels: u32,
    },
    /// Decoding and preparing the image would take more memory than allowed (a very long or
    /// wide image, or a costly colour type).
    #[error("image is {width}x{height} pixels and would need about {needed_mb} MB to process, over the {limit_mb} MB limit")]
    TooMuchMemory {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Estimated need in MiB.
        needed_mb: u64,
        /// Limit in MiB.
        limit_mb: u64,
    },
    /// The bytes are not in an image format the engine decodes.
    #[error("unsupported or unrecognised image format")]
    UnsupportedFormat,
    /// The file is empty.
    #[error("file is empty")]
    Empty,
    /// The image format was recognised but the data is corrupt or truncated.
    #[error("corrupt image: {0}")]
    CorruptImage(String),
    /// The model does not caption in the requested language.
    #[error("language `{lang}` is not supported by this model (supported: {})", supported.join(", "))]
    UnsupportedLanguage {
        /// Requested language code.
        lang: String,
        /// Languages the model has.
        supported: Vec<String>,
    },
    /// A generation option is invalid or the combination is unsupported.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl EngineError {
    pub(crate) fn model(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        EngineError::Model {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The same error again, for reporting one batch failure on each of its images (`Io`
    /// errors, which cannot be cloned, keep their message as an `Inference` error).
    pub fn duplicate(&self) -> Self {
        use EngineError::*;
        match self {
            Runtime(m) => Runtime(m.clone()),
            Model { path, reason } => Model {
                path: path.clone(),
                reason: reason.clone(),
            },
            Hub(m) => Hub(m.clone()),
            Inference(m) => Inference(m.clone()),
            FileTooLarge { size, limit } => FileTooLarge {
                size: *size,
                limit: *limit,
            },
            TooManyPixels {
                width,
                height,
                limit_megapixels,
            } => TooManyPixels {
                width: *width,
                height: *height,
                limit_megapixels: *limit_megapixels,
            },
            TooMuchMemory {
                width,
                height,
                needed_mb,
                limit_mb,
            } => TooMuchMemory {
                width: *width,
                height: *height,
                needed_mb: *needed_mb,
                limit_mb: *limit_mb,
            },
            UnsupportedFormat => UnsupportedFormat,
            Empty => Empty,
            CorruptImage(m) => CorruptImage(m.clone()),
            UnsupportedLanguage { lang, supported } => UnsupportedLanguage {
                lang: lang.clone(),
                supported: supported.clone(),
            },
            InvalidOption(m) => InvalidOption(m.clone()),
            Io { .. } => Inference(self.to_string()),
        }
    }

    /// True when the error is about the input image rather than the engine or the model.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            EngineError::FileTooLarge { .. }
                | EngineError::TooManyPixels { .. }
                | EngineError::TooMuchMemory { .. }
                | EngineError::UnsupportedFormat
                | EngineError::Empty
                | EngineError::CorruptImage(_)
        )
    }
}

impl From<ort::Error> for EngineError {
    fn from(e: ort::Error) -> Self {
        EngineError::Inference(e.to_string())
    }
}

/// Engine result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
