#![doc = include_str!("../README.md")]

#[cfg(feature = "testing")]
pub mod conformance;
pub mod dedup;
mod error;
pub mod followup;
mod matchkey;
mod memory;
mod model;
mod normalize;
mod policy;
pub mod ports;
pub mod routing;
pub mod scoring;
#[cfg(feature = "synth")]
pub mod synth;
pub mod usecase;

pub use dedup::{Decision, DedupConfig, DedupMode, DuplicatePair, MergeRecord, Merged};
pub use error::{Error, FieldError, Result};
pub use followup::{FollowUpConfig, FollowUpStatus, FollowUpTask, plan_followup};
pub use matchkey::{
    MatchKeys, PHONE_KEY_DIGITS, PHONE_KEY_MIN_DIGITS, company_tokens, email_match_key, fold_text,
    phone_key, phonetic,
};
pub use memory::InMemoryStore;
pub use model::{
    Absence, CANONICAL_FIELDS, ChangeOrigin, CrmKind, CrmLink, EXT_ID_ALPHABET, Email, EventKind,
    FieldMap, FieldWarning, Lead, LeadEvent, LeadExtId, LeadFields, LeadInput, Phone, Priority,
    PriorityThresholds, Region, Rep, RepId, RepLoad, RepState, Score, Skills, Stage, StageChange,
    StageProbabilities, WorkingHours,
};
pub use normalize::{
    DomainKind, MAX_FIELD_LEN, NormalizeOptions, check_text, classify_domain, fix_name_case,
    normalize, registrable_domain,
};
pub use policy::{Assessment, Policy};
pub use ports::{
    AccountKey, Assignments, CaptureContext, Claimed, Clock, Commit, CommitFacts, CrmClient,
    Cursor, Dashboard, DeadLetter, Destination, Enricher, FactKeys, FollowUpCursor, FollowUpPage,
    FollowUpQuery, IdGenerator, IdempotencyKey, LeadPage, LeadQuery, LeadStore, LeadWrite,
    LoadChange, LoadDelta, ManualClock, Notifier, OutboxEntry, OutboxKind, OutboxStore, PairPage,
    PairQuery, RandomIds, Replay, ReviewPair, ReviewStatus, SequentialIds, SyncState, SystemClock,
};
#[cfg(any(test, feature = "testing"))]
pub use ports::{
    MockClock, MockCrmClient, MockEnricher, MockIdGenerator, MockLeadStore, MockNotifier,
    MockOutboxStore, MockSyncState,
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
