//! OpenAPI Schema Objects as JSON Schema, and validation errors in words.
//!
//! # Design
//!
//! OpenAPI 3.0 schemas are a dialect of JSON Schema draft 4/5: `nullable: true`
//! instead of a `"null"` type, boolean `exclusiveMaximum`/`exclusiveMinimum`,
//! and `$ref` siblings ignored. [`to_json_schema`] rewrites a schema (with its
//! references inlined) into JSON Schema 2020-12, which the `jsonschema` crate
//! then compiles with format checks on (`date`, `date-time`, `uuid`, `email`,
//! `uri`; unknown formats such as `binary` are annotations). An OpenAPI 3.1
//! schema already is JSON Schema 2020-12 and is only inlined.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value};

use crate::spec::Spec;

/// How deep `$ref`s are inlined before giving up (a cycle).
const MAX_DEPTH: usize = 64;

/// The keywords of a Schema Object whose value is itself a schema.
const SUBSCHEMA: [&str; 3] = ["items", "additionalProperties", "not"];
/// The keywords whose value is a list of schemas.
const SUBSCHEMA_LISTS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
/// OpenAPI-only keywords that mean nothing to a validator.
const DROPPED: [&str; 4] = ["example", "discriminator", "xml", "externalDocs"];

/// `schema` (from `spec`) as a self-contained JSON Schema 2020-12 document.
pub(crate) fn to_json_schema(spec: &Spec, schema: &Value) -> Result<Value, String> {
    convert(spec, schema, spec.is_openapi_30(), 0)
}

fn convert(spec: &Spec, schema: &Value, openapi_30: bool, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "schema nested deeper than {MAX_DEPTH} (a `$ref` cycle?)"
        ));
    }
    let Some(obj) = schema.as_object() else {
        return Ok(schema.clone());
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let target = convert(spec, spec.pointer(reference)?, openapi_30, depth + 1)?;
        // In 3.0 a `$ref`'s siblings are ignored; in 3.1 they apply too.
        if openapi_30 || obj.len() == 1 {
            return Ok(target);
        }
        let mut rest = obj.clone();
        rest.remove("$ref");
        let rest = convert(spec, &Value::Object(rest), openapi_30, depth + 1)?;
        return Ok(serde_json::json!({ "allOf": [target, rest] }));
    }
    let mut out = Map::new();
    for (key, value) in obj {
        if DROPPED.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        let converted = if key == "properties" || key == "patternProperties" {
            let mut props = Map::new();
            for (name, sub) in value.as_object().into_iter().flatten() {
                props.insert(name.clone(), convert(spec, sub, openapi_30, depth + 1)?);
            }
            Value::Object(props)
        } else if SUBSCHEMA.contains(&key.as_str()) && value.is_object() {
            convert(spec, value, openapi_30, depth + 1)?
        } else if SUBSCHEMA_LISTS.contains(&key.as_str()) {
            let mut list = Vec::new();
            for sub in value.as_array().into_iter().flatten() {
                list.push(convert(spec, sub, openapi_30, depth + 1)?);
            }
            Value::Array(list)
        } else {
            value.clone()
        };
        out.insert(key.clone(), converted);
    }
    if !openapi_30 {
        return Ok(Value::Object(out));
    }
    exclusive_bounds(&mut out);
    let nullable = out.remove("nullable") == Some(Value::Bool(true));
    if !nullable {
        return Ok(Value::Object(out));
    }
    // `nullable: true` allows null besides what the schema allows.
    let composed = SUBSCHEMA_LISTS.iter().any(|k| out.contains_key(*k));
    if composed || !out.contains_key("type") {
        return Ok(serde_json::json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] }));
    }
    if let Some(Value::String(t)) = out.get("type").cloned() {
        out.insert("type".into(), serde_json::json!([t, "null"]));
    }
    if let Some(Value::Array(options)) = out.get_mut("enum")
        && !options.contains(&Value::Null)
    {
        options.push(Value::Null);
    }
    Ok(Value::Object(out))
}

/// 3.0's `exclusiveMaximum: true` + `maximum: m` is 2020-12's
/// `exclusiveMaximum: m` (and the same for the minimum).
fn exclusive_bounds(out: &mut Map<String, Value>) {
    for (exclusive, bound) in [
        ("exclusiveMaximum", "maximum"),
        ("exclusiveMinimum", "minimum"),
    ] {
        match out.get(exclusive) {
            Some(Value::Bool(true)) => {
                if let Some(limit) = out.remove(bound) {
                    out.insert(exclusive.into(), limit);
                } else {
                    out.remove(exclusive);
                }
            }
            Some(Value::Bool(false)) => {
                out.remove(exclusive);
            }
            _ => {}
        }
    }
}

/// A compiled validator for a converted schema.
pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("the schema does not compile: {e}"))
}

/// Every error of `value` against `validator`, as (JSON pointer, message),
/// duplicates removed.
pub(crate) fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for error in validator.iter_errors(value) {
        let mut pointer = error.instance_path().as_str().to_owned();
        let message = match error.kind() {
            ValidationErrorKind::Required { property } => {
                pointer.push('/');
                pointer.push_str(property.as_str().unwrap_or_default());
                "required".to_owned()
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(set) => set
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                format!(
                    "{} is {}, expected {expected}",
                    error.instance(),
                    kind_of(error.instance())
                )
            }
            ValidationErrorKind::Maximum { limit } => {
                format!("{} is above maximum {limit}", error.instance())
            }
            ValidationErrorKind::Minimum { limit } => {
                format!("{} is below minimum {limit}", error.instance())
            }
            ValidationErrorKind::ExclusiveMaximum { limit } => {
                format!("{} is not below {limit}", error.instance())
            }
            ValidationErrorKind::ExclusiveMinimum { limit } => {
                format!("{} is not above {limit}", error.instance())
            }
            ValidationErrorKind::Enum { options } => {
                format!("{} is not one of {options}", error.instance())
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => format!(
                "unknown propert{} {} (the schema has additionalProperties: false)",
                if unexpected.len() == 1 { "y" } else { "ies" },
                unexpected
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ValidationErrorKind::Format { format } => {
                format!("{} is not a valid `{format}`", error.instance())
            }
            _ => error.to_string(),
        };
        if !out.iter().any(|(p, m)| *p == pointer && *m == message) {
            out.push((pointer, message));
        }
    }
    out
}

/// `string`, `integer`, … for a JSON value.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ApiVersion;
    use serde_json::json;

    fn spec_30() -> Spec {
        Spec::from_yaml(
            ApiVersion::V2,
            "openapi: 3.0.1\nservers: [{url: 'https://x/api/v2'}]\npaths: {}\n\
             components:\n  schemas:\n    Id: {type: integer, nullable: true}\n",
        )
        .unwrap()
    }

    #[test]
    fn nullable_allows_null_next_to_the_type_and_enum() {
        let s = to_json_schema(
            &spec_30(),
            &json!({"type": "string", "enum": ["a"], "nullable": true}),
        )
        .unwrap();
        assert_eq!(s, json!({"type": ["string", "null"], "enum": ["a", null]}));
    }

    #[test]
    fn nullable_composition_is_wrapped_in_any_of() {
        let s = to_json_schema(
            &spec_30(),
            &json!({"allOf": [{"type": "string"}], "nullable": true}),
        )
        .unwrap();
        assert_eq!(
            s,
            json!({"anyOf": [{"type": "null"}, {"allOf": [{"type": "string"}]}]})
        );
    }

    #[test]
    fn refs_are_inlined_and_converted() {
        let s = to_json_schema(
            &spec_30(),
            &json!({"type": "object", "properties": {"id": {"$ref": "#/components/schemas/Id"}}}),
        )
        .unwrap();
        assert_eq!(s["properties"]["id"], json!({"type": ["integer", "null"]}));
    }

    #[test]
    fn a_dangling_ref_is_an_error_not_a_panic() {
        let err =
            to_json_schema(&spec_30(), &json!({"$ref": "#/components/schemas/Nope"})).unwrap_err();
        assert!(err.contains("points at nothing"), "{err}");
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        let s = to_json_schema(
            &spec_30(),
            &json!({"type": "integer", "maximum": 5, "exclusiveMaximum": true, "minimum": 0, "exclusiveMinimum": false}),
        )
        .unwrap();
        assert_eq!(
            s,
            json!({"type": "integer", "exclusiveMaximum": 5, "minimum": 0})
        );
    }
}
