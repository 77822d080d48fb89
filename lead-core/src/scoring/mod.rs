//! Scoring: rule score, BANT, behavioral score and segmentation.

mod bant;
mod behavior;
mod channel;
mod keywords;
mod name;
mod rules;
mod segment;

pub use bant::{BantConfig, BantLetter, BantLevel, BantResult, timeline_days};
pub use behavior::{BehaviorConfig, BehaviorScore, Decay, KindPoints};
pub use channel::{Channel, channel_of};
pub use keywords::{Keywords, WordBounds, lower};
pub use name::Name;
pub use rules::{Condition, Field, Rule, RuleGroup, RuleHit, RuleScore, RuleSet};
pub use segment::{SegmentConfig, SegmentInput};
