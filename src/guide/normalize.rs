//! Channel names reduced to a key for matching a playlist channel to a guide `display-name`.
//! Providers decorate names differently (`UK: BBC One HD`, `BBC One (1080p)`, `BBC ONE`), so
//! the key folds case, accents and punctuation and drops what does not identify the channel:
//! quality words, bracketed tags and a leading country prefix. What does identify it stays:
//! `+1` (a timeshift is another channel) and `East`/`West` feeds.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Quality and codec words that never tell two channels apart.
const NOISE_WORDS: &[&str] = &[
    "hd", "fhd", "uhd", "sd", "4k", "8k", "hq", "lq", "fullhd", "hevc", "h264", "h265", "raw",
];

/// Words inside brackets that must survive (they name a distinct feed).
const FEED_WORDS: &[&str] = &["east", "west", "pacific", "mountain", "central"];

/// The matching key of a channel name; empty when nothing identifying is left.
pub fn normalize(name: &str) -> String {
    let name = strip_country_prefix(name.trim());
    let mut tokens: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut bracket: Vec<String> = Vec::new();
    for raw in split(name) {
        match raw {
            Piece::Open => depth += 1,
            Piece::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    // A tag such as `(720p)` or `[Geo-blocked]` is dropped; `(East)` is kept.
                    if bracket
                        .iter()
                        .any(|t| FEED_WORDS.contains(&t.as_str()) || t.starts_with("plus"))
                    {
                        tokens.append(&mut bracket);
                    }
                    bracket.clear();
                }
            }
            Piece::Word(word) => {
                let word = fold(&word);
                if word.is_empty() || is_noise(&word) {
                    continue;
                }
                if depth > 0 {
                    bracket.push(word);
                } else {
                    tokens.push(word);
                }
            }
        }
    }
    // Joined without spaces: `Sky Sports1` and `Sky Sports 1` are the same channel.
    tokens.concat()
}

enum Piece {
    Open,
    Close,
    Word(String),
}

/// Words (letters and digits), `+N` timeshifts (as the word `plusN`) and bracket marks.
fn split(name: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut word = String::new();
    let mut chars = name.chars().peekable();
    let flush = |word: &mut String, pieces: &mut Vec<Piece>| {
        if !word.is_empty() {
            pieces.push(Piece::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '(' | '[' | '{' => {
                flush(&mut word, &mut pieces);
                pieces.push(Piece::Open);
            }
            ')' | ']' | '}' => {
                flush(&mut word, &mut pieces);
                pieces.push(Piece::Close);
            }
            '+' if chars.peek().is_some_and(char::is_ascii_digit) => {
                flush(&mut word, &mut pieces);
                word.push_str("plus");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    word.push(d);
                }
                flush(&mut word, &mut pieces);
            }
            c if c.is_alphanumeric() => word.push(c),
            // Apostrophes join (`Channel 4's` stays one word); other punctuation separates.
            '\'' | '\u{2019}' => {}
            _ => flush(&mut word, &mut pieces),
        }
    }
    flush(&mut word, &mut pieces);
    pieces
}

/// Lower case without accents: NFKD, combining marks dropped, and the letters that do not
/// decompose spelled out.
fn fold(word: &str) -> String {
    // ASCII decomposes to itself and has no combining marks: the common case, much cheaper.
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(word.len());
    for c in word.nfkd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'ß' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => out.push('d'),
            'þ' | 'Þ' => out.push_str("th"),
            'ı' => out.push('i'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// `HD`, `4K`, and resolution tags written bare (`1080p`, `720i`, `50fps`).
fn is_noise(word: &str) -> bool {
    if NOISE_WORDS.contains(&word) {
        return true;
    }
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &word[digits..];
    (3..=4).contains(&digits) && (rest == "p" || rest == "i") || digits >= 2 && rest == "fps"
}

/// `UK: `, `UK | `, `|UK| `, `US - `, `FR:` at the start. Two or three capital letters then a
/// colon or bar; a dash only after two letters, so `CNN - International` keeps `CNN`.
fn strip_country_prefix(name: &str) -> &str {
    let inner = name.strip_prefix('|').unwrap_or(name);
    let letters = inner.bytes().take_while(u8::is_ascii_uppercase).count();
    if !(2..=3).contains(&letters) {
        return name;
    }
    let after = inner[letters..].trim_start();
    let sep = after.chars().next();
    let ok = matches!(sep, Some(':') | Some('|')) || (sep == Some('-') && letters == 2);
    // `E4:` or a name that is only a prefix stays as it is.
    let rest = if ok {
        after[1..].trim_start()
    } else {
        return name;
    };
    if rest.is_empty() { name } else { rest }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn same(a: &str, b: &str) {
        assert_eq!(normalize(a), normalize(b), "{a:?} vs {b:?}");
    }

    fn differ(a: &str, b: &str) {
        assert_ne!(normalize(a), normalize(b), "{a:?} vs {b:?}");
    }

    #[test]
    fn folds_case_accents_and_punctuation() {
        same("BBC One", "bbc one");
        same("BBC One", "BBC.One");
        same("Télé-Québec", "tele quebec");
        same("Das Erste", "DAS ERSTE");
        same("Ærø TV", "aero tv");
        same("Sky Sports 1", "Sky Sports1");
        same("Channel 4's", "channel 4s");
        assert_eq!(normalize("Canal+ Sport"), "canalsport");
    }

    #[test]
    fn drops_quality_tags_and_country_prefixes() {
        same("BBC One", "BBC One HD");
        same("BBC One", "BBC One FHD");
        same("BBC One", "BBC One 4K");
        same("BBC One", "BBC One UHD (1080p)");
        same("BBC One", "UK: BBC One HD");
        same("BBC One", "UK | BBC One");
        same("BBC One", "|UK| BBC One");
        same("CNN", "US - CNN [Geo-blocked]");
        same("CNN", "CNN (720p) [Not 24/7]");
        same("CNN", "USA: CNN");
        differ("CNN International", "International");
        assert_eq!(normalize("CNN - International"), "cnninternational");
        assert_eq!(normalize("HD"), "");
    }

    #[test]
    fn keeps_timeshift_and_feeds_distinct() {
        differ("BBC One +1", "BBC One");
        differ("BBC One +1 HD", "BBC One HD");
        same("BBC One +1", "UK: BBC One +1 HD");
        differ("HBO East", "HBO");
        differ("HBO East", "HBO West");
        same("HBO (East)", "HBO East");
        differ("HBO (East)", "HBO (West)");
        same("ITV (+1)", "ITV +1");
    }
}
