//! Captions that quote the text in the picture.
//!
//! [`compose_caption`] is a pure function of a caption (English or Indonesian), the lines read
//! and the picture's [`Layout`]: no model runs here, so the rules are tested on their own.
//!
//! - Photo: the *prominent, confident* lines are quoted. Confident: the line's confidence is at
//!   least [`QUOTE_MIN_CONFIDENCE`] and every word's at least [`QUOTE_MIN_WORD_CONFIDENCE`]
//!   (a line with one doubtful word is left out whole rather than misquoted); it has two or more
//!   letters or digits. Prominent: at least half as tall as the tallest confident line. At most
//!   [`QUOTE_MAX_CHARS`] characters, in reading order, whole lines only. The quote goes after
//!   the first word of the caption that names something that carries writing ("a red sign that
//!   reads “JALAN DITUTUP” on a road", "papan merah bertuliskan “JALAN DITUTUP” di jalan"),
//!   else at the end ("… with the text “…”", "… dengan tulisan “…”").
//! - Document / screenshot (mostly text): the caption says what it is and gives its first
//!   confident line(s): "a document that begins “…”", "tangkapan layar yang diawali “…”".
//! - Nothing confident to quote: the caption is returned unchanged.

use image::RgbImage;
use serde::Serialize;

use super::{TextLine, TextResult};

/// Lowest line confidence that may be quoted.
pub const QUOTE_MIN_CONFIDENCE: f32 = 0.85;
/// Lowest word confidence (its least certain character) that may be quoted.
pub const QUOTE_MIN_WORD_CONFIDENCE: f32 = 0.5;
/// Longest quote, in characters.
pub const QUOTE_MAX_CHARS: usize = 80;

/// What kind of picture the text suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// A scene that may hold some writing (a sign, a label).
    Photo,
    /// Mostly text: a page, a menu, a letter.
    Document,
    /// Mostly text on flat, synthetic colours: a screen capture.
    Screenshot,
}

/// The layout [`super::TextReader`] reports: mostly text when many lines cover much of the
/// picture (4+ lines over 15% of it, or 8+ lines over 8%); a screenshot when, besides, most
/// neighbouring pixels are exactly equal (flat synthetic colours, which camera noise rules out).
pub fn layout_of(result: &TextResult, img: &RgbImage) -> Layout {
    let n = result.lines.len();
    let cover = result.coverage();
    let mostly_text = (n >= 4 && cover >= 0.15) || (n >= 8 && cover >= 0.08);
    if !mostly_text {
        return Layout::Photo;
    }
    if flatness(img) >= 0.5 {
        Layout::Screenshot
    } else {
        Layout::Document
    }
}

/// Share of pixels equal to their right-hand neighbour (every 4th row).
fn flatness(img: &RgbImage) -> f32 {
    let (w, h) = img.dimensions();
    if w < 2 {
        return 0.0;
    }
    let (mut same, mut total) = (0u64, 0u64);
    for y in (0..h).step_by(4) {
        for x in 0..w - 1 {
            total += 1;
            same += (img.get_pixel(x, y) == img.get_pixel(x + 1, y)) as u64;
        }
    }
    same as f32 / total.max(1) as f32
}

/// Whether a line may be quoted at all.
fn confident(l: &TextLine) -> bool {
    l.confidence >= QUOTE_MIN_CONFIDENCE
        && l.word_confidences
            .iter()
            .all(|&c| c >= QUOTE_MIN_WORD_CONFIDENCE)
        && l.text.chars().filter(|c| c.is_alphanumeric()).count() >= 2
}

/// The quote for a photo: prominent confident lines in reading order, whole lines, within the
/// length limit; `None` when nothing qualifies.
pub fn photo_quote(lines: &[TextLine]) -> Option<String> {
    let ok: Vec<&TextLine> = lines.iter().filter(|l| confident(l)).collect();
    let tallest = ok.iter().map(|l| l.height()).fold(0.0f32, f32::max);
    let prominent = ok.into_iter().filter(|l| l.height() >= 0.5 * tallest);
    join_within(prominent, " ")
}

/// The quote for a document or screenshot: its first confident lines, rows apart.
fn first_lines(lines: &[TextLine]) -> Option<String> {
    join_within(lines.iter().filter(|l| confident(l)).take(3), " / ")
}

fn join_within<'a>(lines: impl Iterator<Item = &'a TextLine>, sep: &str) -> Option<String> {
    let mut out = String::new();
    for l in lines {
        let add = if out.is_empty() {
            0
        } else {
            sep.chars().count()
        } + l.text.chars().count();
        if !out.is_empty() && out.chars().count() + add > QUOTE_MAX_CHARS {
            break;
        }
        if out.is_empty() && add > QUOTE_MAX_CHARS {
            // One very long line: cut at a word boundary.
            let mut cut = String::new();
            for word in l.text.split_whitespace() {
                if cut.chars().count() + word.chars().count() + 1 > QUOTE_MAX_CHARS {
                    break;
                }
                if !cut.is_empty() {
                    cut.push(' ');
                }
                cut.push_str(word);
            }
            if cut.is_empty() {
                return None;
            }
            cut.push('…');
            return Some(cut);
        }
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(&l.text);
    }
    (!out.is_empty()).then_some(out)
}

/// Things that carry writing, after which "that reads “…”" reads naturally.
const EN_CARRIERS: &[&str] = &[
    "sign",
    "signs",
    "signboard",
    "board",
    "billboard",
    "banner",
    "poster",
    "posters",
    "placard",
    "notice",
    "plaque",
    "label",
    "labels",
    "sticker",
    "shirt",
    "t-shirt",
    "jersey",
    "menu",
    "screen",
    "book",
    "cover",
    "card",
    "box",
    "package",
    "bottle",
    "can",
    "bag",
    "flag",
    "paper",
    "sheet",
    "note",
    "cup",
    "mug",
    "truck",
    "bus",
    "van",
    "storefront",
    "shop",
    "store",
];
/// Indonesian carriers, followed by "bertuliskan “…”".
const ID_CARRIERS: &[&str] = &[
    "papan", "plang", "rambu", "tanda", "spanduk", "baliho", "poster", "label", "stiker", "kaos",
    "baju", "jersey", "menu", "layar", "buku", "sampul", "kartu", "kotak", "kemasan", "botol",
    "kaleng", "tas", "bendera", "kertas", "catatan", "cangkir", "gelas", "truk", "bus", "toko",
];
/// Words that follow an Indonesian noun and belong to its phrase (adjectives come after the
/// noun in Indonesian: "papan merah").
const ID_MODIFIERS: &[&str] = &[
    "merah",
    "putih",
    "hitam",
    "biru",
    "kuning",
    "hijau",
    "oranye",
    "jingga",
    "cokelat",
    "coklat",
    "abu-abu",
    "ungu",
    "emas",
    "perak",
    "besar",
    "kecil",
    "tua",
    "baru",
    "panjang",
    "lebar",
    "bulat",
    "kayu",
    "logam",
    "besi",
    "plastik",
    "neon",
    "jalan",
    "lalu",
    "lintas",
    "nama",
    "toko",
    "iklan",
    "peringatan",
    "petunjuk",
];

fn bare(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
        .to_lowercase()
}

/// The caption with the picture's text quoted in the caption's language (`en` or `id`; other
/// languages get the English wording). See the module notes for the rules.
pub fn compose_caption(caption: &str, lang: &str, lines: &[TextLine], layout: Layout) -> String {
    let id = lang == "id";
    let caption = caption.trim();
    match layout {
        Layout::Document | Layout::Screenshot => {
            let Some(q) = first_lines(lines) else {
                return caption.to_string();
            };
            let kind = match (layout, id) {
                (Layout::Screenshot, false) => "a screenshot that begins",
                (Layout::Screenshot, true) => "tangkapan layar yang diawali",
                (_, false) => "a document that begins",
                (_, true) => "dokumen yang diawali",
            };
            format!("{kind} “{q}”")
        }
        Layout::Photo => {
            let Some(q) = photo_quote(lines) else {
                return caption.to_string();
            };
            insert_quote(caption, id, &q)
        }
    }
}

fn insert_quote(caption: &str, id: bool, q: &str) -> String {
    // Keep a final full stop at the very end.
    let (body, stop) = match caption.strip_suffix('.') {
        Some(b) => (b.trim_end(), "."),
        None => (caption, ""),
    };
    if body.is_empty() {
        return if id {
            format!("tulisan “{q}”{stop}")
        } else {
            format!("text reading “{q}”{stop}")
        };
    }
    let words: Vec<&str> = body.split(' ').collect();
    let carriers = if id { ID_CARRIERS } else { EN_CARRIERS };
    if let Some(i) = words
        .iter()
        .position(|w| carriers.contains(&bare(w).as_str()))
    {
        let mut end = i;
        if id {
            while end + 1 < words.len() && ID_MODIFIERS.contains(&bare(words[end + 1]).as_str()) {
                end += 1;
            }
        }
        // A word ending in punctuation ("sign,") keeps it after the quote.
        let last = words[end];
        let cut = last.trim_end_matches(|c: char| !c.is_alphanumeric());
        let trailing = &last[cut.len()..];
        let verb = if id {
            "bertuliskan"
        } else if bare(words[i]).ends_with('s')
            && !bare(words[i]).ends_with("ss")
            && bare(words[i]) != "bus"
        {
            "that read"
        } else {
            "that reads"
        };
        let mut out: Vec<String> = words[..end].iter().map(|w| w.to_string()).collect();
        out.push(format!("{cut} {verb} “{q}”{trailing}"));
        out.extend(words[end + 1..].iter().map(|w| w.to_string()));
        return format!("{}{stop}", out.join(" "));
    }
    if id {
        format!("{body} dengan tulisan “{q}”{stop}")
    } else {
        format!("{body} with the text “{q}”{stop}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, confidence: f32, height: f32, row: usize) -> TextLine {
        let y = row as f32 * 100.0;
        TextLine {
            text: text.into(),
            confidence,
            polygon: [[0.0, y], [300.0, y], [300.0, y + height], [0.0, y + height]],
            word_confidences: text.split_whitespace().map(|_| confidence).collect(),
            row,
        }
    }

    #[test]
    fn quotes_a_sign_in_both_languages() {
        let lines = [line("JALAN DITUTUP", 0.97, 60.0, 0)];
        assert_eq!(
            compose_caption(
                "a red sign on the side of a road",
                "en",
                &lines,
                Layout::Photo
            ),
            "a red sign that reads “JALAN DITUTUP” on the side of a road"
        );
        assert_eq!(
            compose_caption("papan merah di pinggir jalan", "id", &lines, Layout::Photo),
            "papan merah bertuliskan “JALAN DITUTUP” di pinggir jalan"
        );
        assert_eq!(
            compose_caption("a man standing in a street.", "en", &lines, Layout::Photo),
            "a man standing in a street with the text “JALAN DITUTUP”."
        );
        assert_eq!(
            compose_caption("seorang pria berdiri di jalan", "id", &lines, Layout::Photo),
            "seorang pria berdiri di jalan dengan tulisan “JALAN DITUTUP”"
        );
    }

    #[test]
    fn never_quotes_doubtful_words_or_small_print() {
        let mut doubtful = line("JALAN DITUTUP", 0.9, 60.0, 0);
        doubtful.word_confidences = vec![0.99, 0.3];
        let low = line("TUTUP", 0.6, 60.0, 0);
        let caption = "a sign on a wall";
        assert_eq!(
            compose_caption(caption, "en", &[doubtful, low], Layout::Photo),
            caption
        );
        // The small line under a big one is not prominent.
        let lines = [
            line("BUKA", 0.99, 80.0, 0),
            line("senin - jumat 08.00", 0.99, 20.0, 1),
        ];
        assert_eq!(
            compose_caption("a sign on a wall", "en", &lines, Layout::Photo),
            "a sign that reads “BUKA” on a wall"
        );
        // Two rows of one sign are one phrase.
        let lines = [line("JALAN", 0.99, 60.0, 0), line("DITUTUP", 0.99, 60.0, 1)];
        assert_eq!(
            compose_caption("two signs by a road", "en", &lines, Layout::Photo),
            "two signs that read “JALAN DITUTUP” by a road"
        );
    }

    #[test]
    fn documents_and_screenshots_say_what_they_are() {
        let lines = [
            line("Settings", 0.99, 30.0, 0),
            line("Wi-Fi", 0.95, 20.0, 1),
            line("Bluetooth", 0.95, 20.0, 2),
            line("Notifications", 0.95, 20.0, 3),
        ];
        assert_eq!(
            compose_caption("a computer screen", "en", &lines, Layout::Screenshot),
            "a screenshot that begins “Settings / Wi-Fi / Bluetooth”"
        );
        assert_eq!(
            compose_caption("layar komputer", "id", &lines, Layout::Document),
            "dokumen yang diawali “Settings / Wi-Fi / Bluetooth”"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        let long = "kata ".repeat(30);
        let q = photo_quote(&[line(long.trim(), 0.99, 40.0, 0)]).unwrap();
        assert!(
            q.ends_with('…') && q.chars().count() <= QUOTE_MAX_CHARS + 1,
            "{q}"
        );
    }
}
