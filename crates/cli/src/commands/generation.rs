//! The options of the commands that caption: the service's caption options (`caption`), and
//! the engine's decoding flags (`caption` on top of those options, `eval` on its own).

use takarir_engine::CaptionOptions;
use takarir_server::options::{CaptionOptions as Options, Features, LangChoice, Style};

/// Decoding flags of the engine; unset ones keep the chosen defaults.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DecodingArgs {
    /// Beam width (1 = greedy)
    #[arg(long)]
    pub beams: Option<usize>,
    /// Maximum tokens per caption
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Minimum tokens per caption
    #[arg(long)]
    pub min_tokens: Option<usize>,
    /// Beam length penalty exponent (> 0 favours longer captions)
    #[arg(long)]
    pub length_penalty: Option<f64>,
    /// Forbid repeating any n-gram of this many tokens
    #[arg(long)]
    pub no_repeat_ngram: Option<usize>,
    /// Repetition penalty (1 = off)
    #[arg(long)]
    pub repetition_penalty: Option<f32>,
    /// Sample instead of searching
    #[arg(long)]
    pub sample: bool,
    /// Sampling temperature
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Sampling: keep the k most likely tokens
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sampling: nucleus probability mass
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Sampling seed
    #[arg(long)]
    pub seed: Option<u64>,
    /// The model's own captions, not checked against the detector and the tagger (to compare)
    #[arg(long)]
    pub ungrounded: bool,
}

impl DecodingArgs {
    /// Whether any flag is set.
    pub fn any(&self) -> bool {
        self.beams.is_some()
            || self.max_tokens.is_some()
            || self.min_tokens.is_some()
            || self.length_penalty.is_some()
            || self.no_repeat_ngram.is_some()
            || self.repetition_penalty.is_some()
            || self.sample
            || self.temperature.is_some()
            || self.top_k.is_some()
            || self.top_p.is_some()
            || self.seed.is_some()
            || self.ungrounded
    }

    /// Sets the flags given on `o`. With `--beams`, as many sequences are returned as there
    /// are beams (at least `alternatives`, which the engine refuses past the beam width).
    pub fn apply(&self, o: &mut CaptionOptions, alternatives: usize) {
        if let Some(b) = self.beams {
            o.num_beams = Some(b);
            o.num_return_sequences = Some(if alternatives > 1 {
                alternatives.max(b)
            } else {
                1
            });
        }
        // Each flag given replaces the setting of the chosen options.
        fn set<T: Copy>(slot: &mut Option<T>, v: Option<T>) {
            if v.is_some() {
                *slot = v;
            }
        }
        set(&mut o.max_new_tokens, self.max_tokens);
        set(&mut o.min_new_tokens, self.min_tokens);
        set(&mut o.length_penalty, self.length_penalty);
        set(&mut o.no_repeat_ngram_size, self.no_repeat_ngram);
        set(&mut o.repetition_penalty, self.repetition_penalty);
        set(&mut o.do_sample, self.sample.then_some(true));
        set(&mut o.temperature, self.temperature);
        set(&mut o.top_k, self.top_k);
        set(&mut o.top_p, self.top_p);
        set(&mut o.seed, self.seed);
        set(&mut o.grounded, self.ungrounded.then_some(false));
    }
}

/// Generation options of `eval`: the model's own decoding unless flags say otherwise.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GenerationArgs {
    /// Caption language: id or en [default: id when the model has it]
    #[arg(long, short = 'l')]
    pub lang: Option<String>,
    /// Captions per image (beam search or sampling)
    #[arg(long)]
    pub alternatives: Option<usize>,
    #[command(flatten)]
    pub decoding: DecodingArgs,
}

impl GenerationArgs {
    pub fn options(&self) -> CaptionOptions {
        let d = &self.decoding;
        CaptionOptions {
            lang: self.lang.clone(),
            num_beams: d.beams,
            max_new_tokens: d.max_tokens,
            min_new_tokens: d.min_tokens,
            length_penalty: d.length_penalty,
            no_repeat_ngram_size: d.no_repeat_ngram,
            repetition_penalty: d.repetition_penalty,
            num_return_sequences: self.alternatives,
            do_sample: d.sample.then_some(true),
            temperature: d.temperature,
            top_k: d.top_k,
            top_p: d.top_p,
            seed: d.seed,
            early_stopping: None,
            grounded: d.ungrounded.then_some(false),
        }
    }
}

/// The caption options of every door (the service's defaults): language, style,
/// alternatives, gender-neutral wording.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OptionArgs {
    /// Caption language: id, en or both [default: the model's default language]
    #[arg(long, short = 'l')]
    pub lang: Option<LangChoice>,
    /// Caption style: short, sentence or detailed [default: sentence]
    #[arg(long)]
    pub style: Option<Style>,
    /// Distinct captions per image and language, 1 to 5 [default: 1]
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub alternatives: Option<u8>,
    /// Rewrite gendered person words (man, woman, pria, wanita, ...) to neutral ones
    #[arg(long)]
    pub gender_neutral: bool,
    /// What to compute, comma-separated: caption, objects, tags, text (the text in the
    /// photo, from models/text beside the model; the best caption then quotes it)
    /// [default: caption]
    #[arg(long, value_name = "LIST")]
    pub features: Option<Features>,
}

impl OptionArgs {
    /// The options these flags choose, over the service defaults.
    pub fn options(&self) -> Options {
        let mut o = Options::default();
        o.lang = self.lang.or(o.lang);
        o.style = self.style.unwrap_or(o.style);
        o.alternatives = self.alternatives.unwrap_or(o.alternatives);
        o.gender_neutral = self.gender_neutral;
        if let Some(f) = &self.features {
            o.features = f.clone();
        }
        o
    }
}
