//! Interned names of rules and groups.

use std::collections::HashSet;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use serde::{Deserialize, Serialize};

static NAMES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);

/// The name of a rule or rule group, interned so copying it into every
/// lead's score breakdown costs nothing.
///
/// # Design
///
/// Every scored lead carries a breakdown naming the rules that fired;
/// reference-counted strings made that the most expensive part of scoring
/// (two atomic updates per name and hit). Names are interned once instead:
/// the process keeps one copy of each distinct name for its lifetime,
/// which is bounded by the rule sets it loads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(&'static str);

impl Name {
    /// Interns a name.
    pub fn new(name: &str) -> Self {
        let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
        match names.get(name) {
            Some(existing) => Name(existing),
            None => {
                let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
                names.insert(leaked);
                Name(leaked)
            }
        }
    }

    /// The name as text.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl From<&str> for Name {
    fn from(value: &str) -> Self {
        Name::new(value)
    }
}

impl From<String> for Name {
    fn from(value: String) -> Self {
        Name::new(&value)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Name::new(&text))
    }
}
