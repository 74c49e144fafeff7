//! A Rust re-implementation of the tokenisation that coco-caption applies before scoring.
//!
//! coco-caption pipes every caption through Stanford CoreNLP 3.4.1's `PTBTokenizer`
//! (`-preserveLines -lowerCase`) and then drops the tokens in [`PUNCTUATIONS`]. This module
//! reproduces the parts of that lexer that matter for caption-like English and Indonesian
//! text: punctuation split off words, clitics split off (`doesn't` → `does n't`, `man's` →
//! `man 's`, `cannot` → `can not`, `gonna` → `gon na`), hyphenated words, numbers
//! (`3.5`, `1,000`, `5:30`) and slashed words (`dog/cat`) kept whole, brackets rewritten as
//! `-lrb-` and friends (which, being lower-cased, survive the punctuation filter exactly as
//! they do in coco-caption), and the PTB abbreviation list deciding whether a final period
//! stays on a word (`mr.`, `etc.`, `u.s.`).
//!
//! It is not a complete port of the JFlex grammar: exotic inputs (SGML, URLs, emoticons,
//! HTML entities) may tokenise differently from Java.

/// Tokens that coco-caption's `PTBTokenizer` wrapper removes after tokenising.
pub const PUNCTUATIONS: [&str; 17] = [
    "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
    "...", ";",
];

/// Abbreviations (compared case-insensitively) after which PTBLexer keeps the final period.
const ABBREV_ANY_CASE: &[&str] = &[
    // titles
    "mr", "mrs", "ms", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty", "attys",
    "lt", "col", "gen", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt", "capt", "st",
    "ste", "ave", "pres", "lieut", "hon", "brig", "cmdr", "comdr", "pfc", "spc", "supt", "supts",
    "det", "messrs", "mme", "mmes", "mlle", "mlles", // companies
    "inc", "co", "cos", "corp", "ltd", "plc", "dept", "univ", "assn", "bhd", "bancorp", "intl",
    "sys", // post-name and places
    "jr", "sr", "bros", "blvd", "rd", "esq", "mt", "ft", "al", // numbers
    "tel", "est", "ext", "sq", // misc
    "etc", "vs", "cf", // months and days
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon",
    "tue", "tues", "wed", "thu", "thurs", "fri", // US states
    "ala", "ariz", "ark", "calif", "colo", "conn", "ct", "dak", "fla", "ga", "ind", "kan", "kans",
    "ky", "md", "mich", "minn", "mo", "mont", "neb", "nev", "okla", "penn", "tenn", "va", "vt",
    "wis", "wisc", "wyo",
];

/// Abbreviations that keep their period only when capitalised exactly like this.
const ABBREV_CAPITALISED: &[&str] = &[
    "Miss", "Del", "Ill", "La", "Mass", "Ore", "Pa", "Tex", "Wash",
];

/// Capitalised words after which PTBLexer reads a single letter and a period ("A.") as the
/// letter followed by a sentence end.
const SENTENCE_STARTERS: &[&str] = &[
    "The", "Then", "A", "An", "This", "That", "These", "There", "It", "He", "She", "They", "We",
    "In", "At", "But", "So", "If", "When", "While", "Her", "Our", "Their", "Some", "Many", "What",
];

/// Whole words that PTB splits in two: (word, length of the first part).
const SPLIT_WORDS: &[(&str, usize)] = &[
    ("cannot", 3),
    ("gonna", 3),
    ("gotta", 3),
    ("wanna", 3),
    ("lemme", 3),
    ("gimme", 3),
];

/// Clitics split off after an apostrophe (besides `n't`).
const CLITICS: &[&str] = &["s", "m", "d", "re", "ve", "ll"];

/// Tokenises `text` as coco-caption does: PTB tokenisation, lower-casing, and removal of the
/// tokens in [`PUNCTUATIONS`] (after lower-casing, so bracket tokens such as `-lrb-` stay).
///
/// ```
/// assert_eq!(
///     takarir_eval::tokenize("A man's dog doesn't like the black-and-white cat."),
///     ["a", "man", "'s", "dog", "does", "n't", "like", "the", "black-and-white", "cat"]
/// );
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    ptb_tokenize(text)
        .into_iter()
        .map(|t| t.to_lowercase())
        .filter(|t| !PUNCTUATIONS.contains(&t.as_str()))
        .collect()
}

/// PTB tokenisation without lower-casing or punctuation removal (brackets already escaped).
fn ptb_tokenize(text: &str) -> Vec<String> {
    let chunks: Vec<Vec<char>> = text
        .split(|c: char| c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().collect())
        .collect();
    let mut out = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        let next: Option<String> = chunks.get(k + 1).map(|c| c.iter().collect());
        tokenize_chunk(chunk, next.as_deref(), &mut out);
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}')
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2012}')
}

fn is_alnum(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric())
}

fn is_digit(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

/// Length of the alphanumeric run starting at `i`.
fn alnum_run(c: &[char], i: usize) -> usize {
    c[i..].iter().take_while(|c| c.is_alphanumeric()).count()
}

/// If an apostrophe at `i` starts a clitic (`'s`, `'ll`, ...) that ends the word, its length.
fn clitic_at(c: &[char], i: usize) -> Option<usize> {
    if !c.get(i).copied().is_some_and(is_apostrophe) {
        return None;
    }
    let run = alnum_run(c, i + 1);
    let suffix: String = c[i + 1..i + 1 + run]
        .iter()
        .collect::<String>()
        .to_lowercase();
    CLITICS.contains(&suffix.as_str()).then_some(run + 1)
}

/// Length of an SGML entity (`&amp;`, `&#39;`) starting at `i`, or 0.
fn entity_len(c: &[char], i: usize) -> usize {
    let rest: String = c[i..c.len().min(i + 8)].iter().collect();
    for named in ["&amp;", "&lt;", "&gt;"] {
        if rest.starts_with(named) {
            return named.len();
        }
    }
    let digits = c[i + 1..]
        .iter()
        .skip(1)
        .take_while(|d| d.is_ascii_digit())
        .count();
    if c.get(i + 1) == Some(&'#') && digits > 0 && c.get(i + 2 + digits) == Some(&';') {
        return digits + 3;
    }
    0
}

fn tokenize_chunk(c: &[char], next_word: Option<&str>, out: &mut Vec<String>) {
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_alphanumeric() {
            i = scan_word(c, i, next_word, out);
            continue;
        }
        match ch {
            '\'' | '\u{2019}' | '\u{2018}' | '`' => {
                if let Some(len) = clitic_at(c, i) {
                    // a clitic written apart from its word: "dog 's"
                    if !is_alnum(c.get(i + len)) {
                        out.push(c[i..i + len].iter().collect());
                        i += len;
                        continue;
                    }
                }
                let run = alnum_run(c, i + 1);
                let word: String = c[i + 1..i + 1 + run].iter().collect();
                let lower = word.to_lowercase();
                if ch == '\''
                    && run >= 2
                    && lower.ends_with('s')
                    && lower[..lower.len() - 1].chars().all(|d| d.is_ascii_digit())
                {
                    // '90s
                    out.push(c[i..i + 1 + run].iter().collect());
                    i += 1 + run;
                } else if ch == '\''
                    && lower == "n"
                    && c.get(i + 2) == Some(&'\'')
                    && !is_alnum(c.get(i + 3))
                {
                    // rock 'n' roll
                    out.push(c[i..i + 3].iter().collect());
                    i += 3;
                } else if ch == '\'' && (lower == "tis" || lower == "twas") {
                    out.push(c[i..i + 2].iter().collect());
                    i += 2;
                } else if c.get(i + 1) == Some(&ch) && matches!(ch, '\'' | '`') {
                    out.push(if ch == '`' { "``" } else { "''" }.to_string());
                    i += 2;
                } else {
                    let tok = if matches!(ch, '`' | '\u{2018}') {
                        "`"
                    } else {
                        "'"
                    };
                    out.push(tok.to_string());
                    i += 1;
                }
            }
            '"' => {
                let opening = i == 0 || matches!(c[i - 1], '(' | '[' | '{');
                out.push(if opening { "``" } else { "''" }.to_string());
                i += 1;
            }
            '\u{201C}' => {
                out.push("``".to_string());
                i += 1;
            }
            '\u{201D}' => {
                out.push("''".to_string());
                i += 1;
            }
            '.' => {
                let run = c[i..].iter().take_while(|&&d| d == '.').count();
                if run == 1 && is_digit(c.get(i + 1)) {
                    // ".5"
                    i = scan_word(c, i, next_word, out);
                    continue;
                }
                out.push(if run >= 2 { "..." } else { "." }.to_string());
                i += run;
            }
            '\u{2026}' => {
                out.push("...".to_string());
                i += 1;
            }
            '-' | '\u{2010}'..='\u{2015}' => {
                if ch == '-' && is_digit(c.get(i + 1)) && (i == 0 || !c[i - 1].is_alphanumeric()) {
                    // negative number
                    i = scan_word(c, i, next_word, out);
                    continue;
                }
                let run = c[i..]
                    .iter()
                    .take_while(|&&d| {
                        is_hyphen(d) || matches!(d, '\u{2013}' | '\u{2014}' | '\u{2015}')
                    })
                    .count();
                let dash = run >= 2 || matches!(ch, '\u{2013}'..='\u{2015}');
                out.push(if dash { "--" } else { "-" }.to_string());
                i += run;
            }
            '&' if entity_len(c, i) > 0 => {
                let len = entity_len(c, i);
                let entity: String = c[i..i + len].iter().collect();
                let decoded = match entity.as_str() {
                    "&amp;" => "&",
                    "&lt;" => "<",
                    "&gt;" => ">",
                    _ => entity.as_str(),
                };
                out.push(decoded.to_string());
                i += len;
            }
            '(' => {
                out.push("-LRB-".to_string());
                i += 1;
            }
            ')' => {
                out.push("-RRB-".to_string());
                i += 1;
            }
            '[' => {
                out.push("-LSB-".to_string());
                i += 1;
            }
            ']' => {
                out.push("-RSB-".to_string());
                i += 1;
            }
            '{' => {
                out.push("-LCB-".to_string());
                i += 1;
            }
            '}' => {
                out.push("-RCB-".to_string());
                i += 1;
            }
            _ => {
                out.push(ch.to_string());
                i += 1;
            }
        }
    }
}

/// Scans a word (letters, digits and word-internal connectors) starting at `start`, pushes
/// it (split into PTB pieces) and returns the index after it.
fn scan_word(c: &[char], start: usize, next_word: Option<&str>, out: &mut Vec<String>) -> usize {
    let mut j = start;
    // optional sign or leading period of a number
    if matches!(c[j], '-' | '.') {
        j += 1;
    }
    loop {
        j += alnum_run(c, j);
        let Some(&d) = c.get(j) else { break };
        let prev = c[j - 1];
        let next = c.get(j + 1);
        let joins = if is_hyphen(d) || d == '.' || d == '/' {
            is_alnum(next)
        } else if d == '!' || d == '?' {
            next.is_some_and(|n| n.is_alphabetic()) && prev.is_alphabetic()
        } else if d == ',' || d == ':' {
            prev.is_ascii_digit() && is_digit(next)
        } else if d == '&' {
            prev.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_uppercase())
        } else if is_apostrophe(d) {
            // d'Avignon, o'clock, l'amour
            j - start == 1
                && matches!(prev, 'd' | 'D' | 'o' | 'O' | 'l' | 'L')
                && next.is_some_and(|n| n.is_alphabetic())
        } else {
            false
        };
        if !joins {
            break;
        }
        j += 1;
    }
    let word: String = c[start..j].iter().collect();

    // clitics: "doesn't" -> "does n't", "man's" -> "man 's", "y'all" -> "y' all"
    if j < c.len() && is_apostrophe(c[j]) {
        let after_t = c.get(j + 1).is_some_and(|t| matches!(t, 't' | 'T'));
        if after_t && !is_alnum(c.get(j + 2)) && word.ends_with(['n', 'N']) {
            let stem = &word[..word.len() - 1];
            if !stem.is_empty() {
                out.push(stem.to_string());
            }
            out.push(format!("{}{}{}", &word[word.len() - 1..], c[j], c[j + 1]));
            return j + 2;
        }
        if matches!(word.as_str(), "y" | "Y") && c.get(j + 1).is_some_and(|n| n.is_alphabetic()) {
            out.push(format!("{word}{}", c[j]));
            return j + 1;
        }
        if let Some(len) = clitic_at(c, j) {
            if !is_alnum(c.get(j + len)) {
                out.push(word);
                out.push(c[j..j + len].iter().collect());
                return j + len;
            }
        }
    }

    let lower = word.to_lowercase();
    if let Some(&(_, cut)) = SPLIT_WORDS.iter().find(|(w, _)| *w == lower) {
        out.push(word[..cut].to_string());
        out.push(word[cut..].to_string());
        return j;
    }

    // a single final period: part of an abbreviation or a separate token?
    if c.get(j) == Some(&'.') && c.get(j + 1) != Some(&'.') && !is_alnum(c.get(j + 1)) {
        let end_of_chunk = j + 1 == c.len();
        if keeps_period(&word, end_of_chunk, next_word) {
            out.push(format!("{word}."));
            return j + 1;
        }
    }
    out.push(word);
    j
}

/// Whether PTBLexer keeps the period after `word` as part of the token.
fn keeps_period(word: &str, end_of_chunk: bool, next_word: Option<&str>) -> bool {
    let chars: Vec<char> = word.chars().collect();
    // acronyms: "u.s", "p.m", "e.g"
    let acronym = chars.len() >= 3
        && chars.iter().enumerate().all(|(k, ch)| {
            if k % 2 == 0 {
                ch.is_ascii_alphabetic()
            } else {
                *ch == '.'
            }
        });
    if acronym {
        return true;
    }
    if chars.len() == 1 && chars[0].is_ascii_alphabetic() {
        return !(end_of_chunk && next_word.is_some_and(|w| SENTENCE_STARTERS.contains(&w)));
    }
    let lower = word.to_lowercase();
    if lower == "no" {
        return end_of_chunk
            && next_word.is_some_and(|w| w.starts_with(|n: char| n.is_ascii_digit()));
    }
    ABBREV_ANY_CASE.contains(&lower.as_str()) || ABBREV_CAPITALISED.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn clitics_and_hyphens() {
        assert_eq!(
            tok("He can't swim; she cannot run!"),
            ["he", "ca", "n't", "swim", "she", "can", "not", "run"]
        );
        assert_eq!(
            tok("I'm gonna go, you're right, we'll see."),
            ["i", "'m", "gon", "na", "go", "you", "'re", "right", "we", "'ll", "see"]
        );
        assert_eq!(tok("The dogs' owner"), ["the", "dogs", "owner"]);
        assert_eq!(
            tok("a t-shirt, a 3-foot wall"),
            ["a", "t-shirt", "a", "3-foot", "wall"]
        );
        assert_eq!(tok("a dog- -a cat"), ["a", "dog", "a", "cat"]);
    }

    #[test]
    fn brackets_survive_the_filter_like_in_coco_caption() {
        assert_eq!(
            tok("Two kids (a boy) play [here]."),
            ["two", "kids", "-lrb-", "a", "boy", "-rrb-", "play", "-lsb-", "here", "-rsb-"]
        );
    }

    #[test]
    fn numbers_symbols_and_abbreviations() {
        assert_eq!(
            tok("The U.S. flag at 3.5 p.m. costs $1,000 -- really..."),
            ["the", "u.s.", "flag", "at", "3.5", "p.m.", "costs", "$", "1,000", "really"]
        );
        assert_eq!(
            tok("Mr. Smith waits at 5:30 & jumps*high."),
            ["mr.", "smith", "waits", "at", "5:30", "&", "jumps", "*", "high"]
        );
        assert_eq!(tok("cats, dogs, etc."), ["cats", "dogs", "etc."]);
        assert_eq!(
            tok("a big #1 fan 100%"),
            ["a", "big", "#", "1", "fan", "100", "%"]
        );
    }

    #[test]
    fn quotes_are_dropped() {
        assert_eq!(
            tok("a 'hello' and \"bye\" `ok` “curly” ‘single’ em—dash…"),
            ["a", "hello", "and", "bye", "ok", "curly", "single", "em", "dash"]
        );
        assert_eq!(
            tok("rock 'n' roll in the '90s o'clock"),
            ["rock", "'n'", "roll", "in", "the", "'90s", "o'clock"]
        );
    }

    #[test]
    fn empty_and_punctuation_only() {
        assert!(tok("").is_empty());
        assert!(tok(" ... , ; ").is_empty());
    }
}
