//! OpenAPI schemas built from the domain's own lists, so a request schema
//! names exactly the values the validation behind it accepts.

use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// Declares a schema built by a function of [`crate::schema`] as a named
/// OpenAPI component.
macro_rules! named_schema {
    ($(#[$doc:meta])* $name:ident = $build:path) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $build().into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use named_schema;

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

/// `low`, `medium` or `high` (`lead_core::Priority::ALL`).
pub(crate) fn priority() -> Object {
    string_enum(lead_core::Priority::ALL.map(lead_core::Priority::as_str))
}

/// An e-mail address.
pub(crate) fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Email,
        )))
        .build()
}

/// Text no store refuses: anything but the NUL character.
pub(crate) fn text() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[^\\u0000]*$"))
        .build()
}

/// A date (`2026-11-25`) or an RFC 3339 instant.
pub(crate) fn date_or_instant() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(
            "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$",
        ))
        .build()
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

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn strings(items: Object) -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(items)
        .build()
}

/// A follow-up task's status.
pub(crate) fn followup_status() -> Object {
    string_enum(lead_core::FollowUpStatus::ALL.map(lead_core::FollowUpStatus::as_str))
}

/// A lead id as the API writes it (`WEB-` and 8 letters or digits; read
/// case-insensitively).
pub(crate) fn lead_ext_id() -> Object {
    let alphabet = std::str::from_utf8(lead_core::EXT_ID_ALPHABET).unwrap_or("A-Z0-9");
    let letters = format!("{alphabet}{}", alphabet.to_ascii_lowercase());
    string()
        .pattern(Some(format!("^[Ww][Ee][Bb]-[{letters}]{{8}}$")))
        .build()
}

/// A rep's profile (`lead_core::Rep`): `whole`, as when adding a rep
/// (`id` and `name` required, working hours given whole), or a change of
/// one (every field optional; objects are merged key by key).
fn rep_object(whole: bool) -> Object {
    let time = || string().pattern(Some("^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"));
    let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut working_hours = ObjectBuilder::new()
        .property(
            "days",
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(string().enum_values(Some(weekdays)).build())
                .build(),
        )
        .property("start", time().build())
        .property("end", time().build());
    if whole {
        working_hours = working_hours
            .required("days")
            .required("start")
            .required("end");
    }
    let working_hours = working_hours
        .additional_properties(Some(closed()))
        .description(Some(
            "Working days and hours in the rep's time zone; end <= start runs past midnight",
        ))
        .build();
    let instant = || {
        string().format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
    };
    let absence = ObjectBuilder::new()
        .property("start", instant().build())
        .property("end", instant().build())
        .required("start")
        .required("end")
        .additional_properties(Some(closed()))
        .description(Some(
            "Away from start (inclusive) to end (exclusive); end must be after start",
        ))
        .build();
    let date = string()
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Date,
        )))
        .build();
    let skill_list = || strings(string().pattern(Some("^[^\\u0000]*$")).build());
    let skills = ObjectBuilder::new()
        .property("industries", skill_list())
        .property("products", skill_list())
        .property("regions", skill_list())
        .property("languages", skill_list())
        .additional_properties(Some(closed()))
        .build();
    let count = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(u32::MAX))
    };
    let number = || {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0))
    };
    let mut rep = ObjectBuilder::new();
    if whole {
        rep = rep
            .property(
                "id",
                string()
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Email,
                    )))
                    .description(Some("The rep's e-mail, their id"))
                    .build(),
            )
            .required("id")
            .required("name");
    }
    let rep = rep
        .property(
            "name",
            string()
                .min_length(Some(1))
                .pattern(Some("[^\\s]"))
                .description(Some("Display name"))
                .build(),
        )
        .property(
            "active",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("Inactive reps receive no leads and keep theirs")),
        )
        .property(
            "time_zone",
            string()
                .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
                .description(Some("IANA time zone")),
        )
        .property("working_hours", working_hours)
        .property(
            "absences",
            utoipa::openapi::schema::ArrayBuilder::new().items(absence),
        )
        .property(
            "holidays",
            utoipa::openapi::schema::ArrayBuilder::new().items(date),
        )
        .property(
            "daily_capacity",
            count().description(Some("Most leads per local day")),
        )
        .property(
            "open_capacity",
            count().description(Some("Most open leads at once")),
        )
        .property("skills", skills)
        .property(
            "weight",
            number().description(Some("Share of leads (1 is normal)")),
        )
        .property(
            "conversion_rate",
            number()
                .maximum(Some(1))
                .description(Some("Historical conversion rate, 0 to 1")),
        )
        .additional_properties(Some(closed()));
    rep.build()
}

/// A whole rep, as `PUT /api/reps` adds or replaces one.
pub(crate) fn rep() -> Object {
    rep_object(true)
}

/// The fields of a rep to change (`PUT /api/reps/{rep_id}`; not its id).
pub(crate) fn rep_change() -> Object {
    rep_object(false)
}

/// `{"reps": [rep, ...]}`.
pub(crate) fn reps_body() -> Object {
    ObjectBuilder::new()
        .property(
            "reps",
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(rep())
                .min_items(Some(1))
                .max_items(Some(1000)),
        )
        .required("reps")
        .additional_properties(Some(closed()))
        .build()
}

/// Any JSON value.
fn any() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .build()
}

/// `additionalProperties: false`: the server refuses unknown fields.
fn closed() -> utoipa::openapi::schema::AdditionalProperties<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::AdditionalProperties::FreeForm(false)
}

/// One lead as a form or webhook sends it: `email` required, the
/// original system's fields, and anything else (kept in `metadata`).
pub(crate) fn capture_lead() -> Object {
    lead_fields(true, true)
}

/// A lead's fields as a capture reads them: `email` (required when
/// `required`), every lead field, anything else kept in `metadata`;
/// with `honeypot`, the `_hp` field people leave empty.
fn lead_fields(required: bool, honeypot: bool) -> Object {
    let mut lead = ObjectBuilder::new().property("email", email());
    if required {
        lead = lead.required("email");
    }
    if honeypot {
        lead = lead.property(
            "_hp",
            string().max_length(Some(0)).description(Some(
                "Honeypot: people leave it empty (hidden by CSS). A form post that fills it is answered as if stored and nothing is stored (a batch item is refused)",
            )),
        );
    }
    for field in lead_core::CANONICAL_FIELDS
        .into_iter()
        .filter(|f| *f != "email")
    {
        // Text is read as text, numbers and booleans as their text, and
        // anything else kept in metadata: every JSON value is taken.
        lead = lead.property(field, any());
    }
    lead.property("metadata", any())
    .description(Some("One lead: only a missing or invalid email is refused; other values that do not parse are kept and listed in `warnings`; unknown fields go to `metadata`"))
    .build()
}

/// `{"leads": [lead, ...]}`, 1 to 100 leads (the default batch limit).
/// Each lead is answered on its own (a lead without an e-mail is one
/// refused item), so the items' `email` is not required here.
pub(crate) fn capture_batch() -> Object {
    ObjectBuilder::new()
        .property(
            "leads",
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(lead_fields(false, true))
                .min_items(Some(1))
                .max_items(Some(100)),
        )
        .required("leads")
        .build()
}

/// `PUT /api/leads/{id}/assign`: a rep (`assigned_to`) or `route: true`,
/// exactly one, and optionally the version the change is based on.
pub(crate) fn assign_body() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AllOfBuilder, OneOfBuilder, Schema};
    let rep = ObjectBuilder::new().required("assigned_to").build();
    let route = ObjectBuilder::new()
        .property(
            "route",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .required("route")
        .build();
    let fields = ObjectBuilder::new()
        .property("assigned_to", email())
        .property(
            "route",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("Let routing choose the rep")),
        )
        .property(
            "expected_version",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .description(Some(
                    "The version the change is based on (else If-Match); a stale one is 409",
                )),
        )
        .additional_properties(Some(closed()))
        .build();
    AllOfBuilder::new()
        .item(fields)
        .item(Schema::OneOf(
            OneOfBuilder::new().item(rep).item(route).build(),
        ))
        .build()
        .into()
}

/// `{"lead_ext_id": ...}` or `{"lead": {...}}`, exactly one of them.
pub(crate) fn dry_run_body() -> Object {
    ObjectBuilder::new()
        .property("lead_ext_id", lead_ext_id())
        .property("lead", lead_fields(true, false))
        .min_properties(Some(1))
        .max_properties(Some(1))
        .additional_properties(Some(closed()))
        .build()
}

/// `BatchAnswer` or `ErrorBody`: what a batch that stored nothing answers.
pub(crate) fn batch_refusal() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(Ref::from_schema_name("BatchAnswer"))
            .item(Ref::from_schema_name("ErrorBody"))
            .build(),
    )
}

/// `Accepted` or `FormReceived`: what a stored capture answers (anyOf:
/// an `Accepted` answer also has every field a `FormReceived` has).
pub(crate) fn capture_answer() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{AnyOfBuilder, Schema};
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("Accepted"))
            .item(Ref::from_schema_name("FormReceived"))
            .build(),
    )
}

/// Two different lead ids (`POST /api/merges`).
pub(crate) fn two_leads() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(lead_ext_id())
        .min_items(Some(2))
        .max_items(Some(2))
        .unique_items(true)
        .description(Some("The two leads to merge (the older one survives)"))
        .build()
}
