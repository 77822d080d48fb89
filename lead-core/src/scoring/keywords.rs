//! Keyword lists matched in one pass over a text.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};
use serde::{Deserialize, Serialize};

/// Where a keyword may sit in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordBounds {
    /// Anywhere, even inside a word (`necesit` finds `necesitamos`).
    Anywhere,
    /// At the start of a word (`immediate` finds `immediately`, `now` not `know`).
    WordStart,
    /// A whole word or phrase (`cto` finds `CTO` but not `director`).
    WholeWord,
}

/// An immutable list of lower-case keywords, compiled once into an
/// Aho-Corasick automaton so a text is scanned once for all of them.
///
/// # Design
///
/// Scoring runs for every captured lead; searching for fifty keywords one by
/// one cost about a microsecond per lead, one automaton costs a fraction of
/// that. The list cannot be changed in place (build a new one), so the
/// compiled automaton never goes stale.
#[derive(Clone, Default)]
pub struct Keywords {
    words: Arc<[String]>,
    automaton: Arc<OnceLock<Option<AhoCorasick>>>,
}

impl Keywords {
    /// A list of keywords (lower-cased here).
    pub fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Self {
        let words: Vec<String> = words
            .into_iter()
            .map(|w| w.as_ref().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        Keywords {
            words: words.into(),
            automaton: Arc::default(),
        }
    }

    /// The keywords.
    pub fn as_slice(&self) -> &[String] {
        &self.words
    }

    fn automaton(&self) -> Option<&AhoCorasick> {
        // ASCII case is folded by the automaton; `lower` handles the rest.
        self.automaton
            .get_or_init(|| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .build(self.words.iter())
                    .ok()
            })
            .as_ref()
    }

    /// The first keyword (in text order) found in `lower_text`, lower-cased
    /// by the caller with [`lower`] (ASCII case does not matter).
    pub fn find(&self, lower_text: &str, bounds: WordBounds) -> Option<&str> {
        self.find_index(lower_text, bounds)
            .map(|i| self.words[i].as_str())
    }

    /// Like [`find`](Self::find), but the keyword's position in the list.
    pub fn find_index(&self, lower_text: &str, bounds: WordBounds) -> Option<usize> {
        let automaton = self.automaton()?;
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        automaton
            .find_overlapping_iter(lower_text)
            .find(|m| match bounds {
                WordBounds::Anywhere => true,
                WordBounds::WordStart => boundary(lower_text[..m.start()].chars().next_back()),
                WordBounds::WholeWord => {
                    boundary(lower_text[..m.start()].chars().next_back())
                        && boundary(lower_text[m.end()..].chars().next())
                }
            })
            .map(|m| m.pattern().as_usize())
    }
}

/// Lower-cases text for [`Keywords::find`]: ASCII text is borrowed as is
/// (the automaton ignores ASCII case), other text is lower-cased so `AÑO`
/// still finds `año`.
pub fn lower(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

impl std::fmt::Debug for Keywords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.words.iter()).finish()
    }
}

impl PartialEq for Keywords {
    fn eq(&self, other: &Self) -> bool {
        self.words == other.words
    }
}

impl Serialize for Keywords {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.words.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Keywords {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Keywords::new(Vec::<String>::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_decide_what_counts_as_a_match() {
        let k = Keywords::new(["cto", "head of", "now", "necesit"]);
        assert_eq!(k.find("acting cto", WordBounds::WholeWord), Some("cto"));
        assert_eq!(k.find("Acting CTO", WordBounds::WholeWord), Some("cto"));
        assert_eq!(
            Keywords::new(["año"]).find(&lower("ESTE AÑO"), WordBounds::WholeWord),
            Some("año")
        );
        assert_eq!(k.find("director", WordBounds::WholeWord), None);
        assert_eq!(
            k.find("head of sales", WordBounds::WholeWord),
            Some("head of")
        );
        assert_eq!(k.find("i don't know", WordBounds::WordStart), None);
        assert_eq!(k.find("right now", WordBounds::WordStart), Some("now"));
        assert_eq!(
            k.find("necesitamos ayuda", WordBounds::Anywhere),
            Some("necesit")
        );
        assert_eq!(
            Keywords::new(Vec::<String>::new()).find("anything", WordBounds::Anywhere),
            None
        );
    }
}
