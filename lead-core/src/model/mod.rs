//! The lead model: newtypes that parse once and are trusted afterwards.

mod email;
mod ext_id;
mod input;
mod lead;
mod phone;
mod rep;
mod score;
mod stage;

pub use email::Email;
pub use ext_id::{EXT_ID_ALPHABET, LeadExtId};
pub use input::{CANONICAL_FIELDS, FieldMap, LeadInput};
pub use lead::{
    ALTERNATE_EMAILS, ALTERNATE_VALUES, ChangeOrigin, CrmKind, CrmLink, EventKind, FieldWarning,
    LeadEvent, LeadFields, PENDING_CHANGES, RESERVED_METADATA_KEYS, StageChange,
};
pub use phone::{Phone, Region};
pub use rep::{Absence, Rep, RepId, RepLoad, RepState, Skills, WorkingHours};
pub use score::{Priority, PriorityThresholds, Score};
pub use stage::{Stage, StageProbabilities};
