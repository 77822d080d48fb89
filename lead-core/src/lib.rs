#![doc = include_str!("../README.md")]

pub mod commit;
#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod crm_conformance;
pub mod dedup;
mod error;
pub mod followup;
mod lead;
mod matchkey;
mod memory;
mod model;
mod normalize;
pub mod notify;
mod policy;
pub mod ports;
pub mod query;
pub mod routing;
pub mod scoring;
pub mod standard_webhooks;
pub mod sync;
#[cfg(feature = "synth")]
pub mod synth;
pub mod usecase;

pub use commit::{
    Assignments, Commit, CommitFacts, Destination, FactKeys, IdempotencyKey, LeadWrite, LoadChange,
    LoadDelta, OutboxEntry, OutboxKind,
};
pub use dedup::review::{PairPage, PairQuery, ReviewPair, ReviewStatus};
pub use dedup::{Decision, DedupConfig, DedupMode, DuplicatePair, MergeRecord, Merged};
pub use error::{Cause, Error, FieldError, Result, error_chain};
pub use followup::{FollowUpConfig, FollowUpStatus, FollowUpTask, plan_followup};
pub use lead::{CrmApplied, Lead};
pub use matchkey::{
    MatchKeys, PHONE_KEY_DIGITS, PHONE_KEY_MIN_DIGITS, company_tokens, email_match_key, fold_text,
    phone_key, phonetic,
};
pub use memory::InMemoryStore;
pub use model::{
    Absence, CANONICAL_FIELDS, ChangeOrigin, CrmKind, CrmLink, EXT_ID_ALPHABET, Email, EventKind,
    FieldMap, FieldWarning, LeadEvent, LeadExtId, LeadFields, LeadInput, Phone, Priority,
    PriorityThresholds, RESERVED_METADATA_KEYS, Region, Rep, RepId, RepLoad, RepState, Score,
    Skills, Stage, StageChange, StageProbabilities, WorkingHours,
};
pub use normalize::{
    DomainKind, MAX_FIELD_LEN, NormalizeOptions, check_text, classify_domain, fix_name_case,
    normalize, registrable_domain,
};
pub use policy::{Assessment, Policy};
pub use ports::{
    AccountKey, CaptureContext, Claimed, Clock, CrmClient, DeadLetter, Enricher, IdGenerator,
    JobRun, JobStore, LeadReads, LeadStore, ManualClock, Notifier, OutboxStore, RandomIds,
    RepStore, Replay, SequentialIds, Store, SyncState, SystemClock,
};
#[cfg(any(test, feature = "testing"))]
pub use ports::{
    MockClock, MockCrmClient, MockEnricher, MockIdGenerator, MockJobStore, MockLeadReads,
    MockLeadStore, MockNotifier, MockOutboxStore, MockRepStore, MockSyncState,
};
pub use query::{
    Cursor, Dashboard, FollowUpCursor, FollowUpPage, FollowUpQuery, LeadPage, LeadQuery,
};
pub use routing::{
    RoutingConfig, RoutingDecision, RoutingExplanation, RoutingRequest, RoutingStrategy,
    apply_assignment, release_lead, route, route_many,
};
pub use scoring::{
    BantConfig, BantLetter, BantLevel, BantResult, BehaviorConfig, BehaviorScore, Channel,
    Condition, Decay, Field, Keywords, KindPoints, Name, Rule, RuleGroup, RuleHit, RuleScore,
    RuleSet, SegmentConfig, SegmentInput, WordBounds, channel_of, lower, timeline_days,
};
pub use usecase::Deps;
