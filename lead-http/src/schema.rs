//! OpenAPI schemas built from the domain's own lists, so a request schema
//! names exactly the values the validation behind it accepts.

use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

fn string_enum(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// One of the pipeline stages (`lead_core::Stage::ALL`).
pub(crate) fn stage() -> Object {
    string_enum(lead_core::Stage::ALL.map(lead_core::Stage::as_str))
}

/// One of the behavioral event kinds (`lead_core::EventKind::ALL`).
pub(crate) fn event_kind() -> Object {
    string_enum(lead_core::EventKind::ALL.map(lead_core::EventKind::as_str))
}

/// Text no store refuses (anything but the NUL character,
/// `lead_core::check_text`), or `null`.
pub(crate) fn optional_text() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some("^[^\\u0000]*$"))
        .build()
}
