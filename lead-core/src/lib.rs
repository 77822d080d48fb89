#![doc = include_str!("../README.md")]

mod error;
mod matchkey;
mod model;
mod normalize;
pub mod scoring;

pub use error::{Error, FieldError, Result};
pub use matchkey::{MatchKeys, company_tokens, email_match_key, fold_text, phonetic};
pub use model::*;
pub use normalize::{
    DomainKind, MAX_FIELD_LEN, NormalizeOptions, classify_domain, fix_name_case, normalize,
    registrable_domain,
};
pub use scoring::*;
