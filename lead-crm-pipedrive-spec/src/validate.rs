//! Checking one recorded request against the document its path belongs to.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use crate::problem::{Location, Problem};
use crate::request::Recorded;
use crate::schema;
use crate::spec::{ApiVersion, OperationDef, Segment, Spec};

/// The operation a valid request was matched to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    /// The document it is in.
    pub version: ApiVersion,
    /// The template as written in the document: `/persons/{id}`.
    pub template: String,
    /// Upper case: `GET`.
    pub method: String,
    /// The document's `operationId` (`searchPersons`), if it has one.
    pub operation_id: Option<String>,
    /// The document's `x-token-cost` (Pipedrive's daily-budget cost).
    pub token_cost: Option<u64>,
}

impl Operation {
    /// `GET /api/v2/persons/search`: method and template with the version
    /// prefix, as a client sends it.
    pub fn key(&self) -> String {
        format!("{} {}{}", self.method, self.version.prefix(), self.template)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())?;
        if let Some(id) = &self.operation_id {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

/// Validates `request` against the Pipedrive document its path belongs to:
/// `/api/v1/…` (or `/v1/…`) against `openapi-v1.yaml`, `/api/v2/…` against
/// `openapi-v2.yaml`.
///
/// # Errors
///
/// Every problem found, each naming the part of the request it is about.
pub fn validate(request: &Recorded) -> Result<Operation, Vec<Problem>> {
    // Each document is parsed only when a request needs it.
    for version in [ApiVersion::V2, ApiVersion::V1] {
        let spec = Spec::get(version);
        if spec.strip_base(&request.path).is_some() {
            return spec.validate(request);
        }
    }
    Err(vec![Problem::new(
        Location::Path,
        format!(
            "`{}` is under neither /api/v1 nor /api/v2 (the two Pipedrive documents)",
            request.path
        ),
    )])
}

impl Spec {
    /// Validates `request` against this document only.
    ///
    /// # Errors
    ///
    /// Every problem found; see [`validate`].
    pub fn validate(&self, request: &Recorded) -> Result<Operation, Vec<Problem>> {
        let Some(rest) = self.strip_base(&request.path) else {
            return Err(vec![Problem::new(
                Location::Path,
                format!(
                    "`{}` is not under this document's base path {}",
                    request.path,
                    self.base_path()
                ),
            )]);
        };
        let def = self.find(&request.method, rest)?;
        let mut problems = Vec::new();
        let params = match self.parameters(def) {
            Ok(params) => params,
            Err(message) => return Err(vec![Problem::new(Location::Spec, message)]),
        };
        self.check_path_params(def, rest, &params, &mut problems);
        let query_credentials = self.check_credentials(def, request, &mut problems);
        self.check_query(def, request, &params, &query_credentials, &mut problems);
        check_headers(request, &params, &mut problems);
        self.check_body(def, request, &mut problems);
        if problems.is_empty() {
            Ok(Operation {
                version: self.version(),
                method: def.method.clone(),
                template: def.template.clone(),
                operation_id: def
                    .op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                token_cost: def.op.get("x-token-cost").and_then(Value::as_u64),
            })
        } else {
            Err(problems)
        }
    }

    /// The operation for `method` on `rest` (the path after the base path);
    /// a literal segment beats a parameter (`/persons/search` over
    /// `/persons/{id}`).
    fn find(&self, method: &str, rest: &str) -> Result<&OperationDef, Vec<Problem>> {
        let sent: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let mut candidates: Vec<&OperationDef> = self
            .operations()
            .iter()
            .filter(|def| matches_template(&def.segments, &sent))
            .collect();
        candidates.sort_by(|a, b| specificity(&a.segments, &b.segments));
        let method = method.to_ascii_uppercase();
        if let Some(def) = candidates.iter().find(|def| def.method == method) {
            return Ok(def);
        }
        if candidates.is_empty() {
            return Err(vec![Problem::new(
                Location::Path,
                format!(
                    "no operation in the {} document matches {method} {rest}",
                    self.version()
                ),
            )]);
        }
        let mut allowed: Vec<String> = candidates
            .iter()
            .map(|def| format!("{} {}", def.method, def.template))
            .collect();
        allowed.dedup();
        Err(vec![Problem::new(
            Location::Method,
            format!(
                "{method} is not an operation on {rest} in the {} document (it has: {})",
                self.version(),
                allowed.join(", ")
            ),
        )])
    }

    /// The operation's parameters: the path item's, overridden by the
    /// operation's own (same name and `in`), references resolved.
    fn parameters(&self, def: &OperationDef) -> Result<Vec<Value>, String> {
        let mut params: Vec<Value> = Vec::new();
        for list in [
            &def.item_params,
            def.op.get("parameters").unwrap_or(&Value::Null),
        ] {
            for param in list.as_array().into_iter().flatten() {
                let param = self.resolve(param)?.clone();
                params.retain(|p| {
                    !(p.get("name") == param.get("name") && p.get("in") == param.get("in"))
                });
                params.push(param);
            }
        }
        Ok(params)
    }

    fn check_path_params(
        &self,
        def: &OperationDef,
        rest: &str,
        params: &[Value],
        problems: &mut Vec<Problem>,
    ) {
        let sent = rest.split('/').filter(|s| !s.is_empty());
        for (segment, raw) in def.segments.iter().zip(sent) {
            let Segment::Param(name) = segment else {
                continue;
            };
            let location = Location::PathParam(name.clone());
            let Some(param) = find_param(params, "path", name) else {
                problems.push(Problem::new(
                    Location::Spec,
                    format!("the template's `{{{name}}}` has no path parameter"),
                ));
                continue;
            };
            let value = percent_decode(raw);
            self.check_value(param, &location, &[value], problems);
        }
    }

    /// Checks the operation's `security` alternatives; returns the query
    /// parameter names that carry credentials (so they are not "unknown").
    fn check_credentials(
        &self,
        def: &OperationDef,
        request: &Recorded,
        problems: &mut Vec<Problem>,
    ) -> Vec<String> {
        let requirements = def
            .op
            .get("security")
            .or_else(|| self.document().get("security"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut query_names = Vec::new();
        if requirements.is_empty()
            || requirements
                .iter()
                .any(|r| r.as_object().is_some_and(Map::is_empty))
        {
            return query_names;
        }
        let mut wanted = Vec::new();
        let mut satisfied = false;
        for requirement in &requirements {
            let Some(schemes) = requirement.as_object() else {
                continue;
            };
            let mut all = true;
            let mut described = Vec::new();
            for name in schemes.keys() {
                let scheme = self
                    .document()
                    .pointer(&format!("/components/securitySchemes/{name}"))
                    .and_then(|s| self.resolve(s).ok());
                let Some(scheme) = scheme else {
                    problems.push(Problem::new(
                        Location::Spec,
                        format!("security scheme `{name}` is not in components.securitySchemes"),
                    ));
                    return query_names;
                };
                let (ok, description) = credential_present(scheme, request, &mut query_names);
                all &= ok;
                described.push(format!("{description} ({name})"));
            }
            satisfied |= all;
            wanted.push(described.join(" and "));
        }
        if !satisfied {
            problems.push(Problem::new(
                Location::Credentials,
                format!(
                    "none sent; the operation takes one of: {}",
                    wanted.join("; ")
                ),
            ));
        }
        query_names
    }

    fn check_query(
        &self,
        def: &OperationDef,
        request: &Recorded,
        params: &[Value],
        credential_names: &[String],
        problems: &mut Vec<Problem>,
    ) {
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in &request.query {
            if seen.contains(&name.as_str()) {
                continue;
            }
            seen.push(name);
            let location = Location::Query(name.clone());
            let values: Vec<String> = request
                .query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect();
            match find_param(params, "query", name) {
                Some(param) => self.check_value(param, &location, &values, problems),
                None if credential_names.contains(name) => {}
                None => problems.push(Problem::new(
                    location,
                    format!("not a parameter of {} {}", def.method, def.template),
                )),
            }
        }
        for param in params
            .iter()
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
        {
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if is_required(param) && !seen.contains(&name) {
                problems.push(Problem::new(
                    Location::Query(name.to_owned()),
                    "required, missing",
                ));
            }
        }
    }

    /// Converts the sent string(s) by the parameter's schema type and checks
    /// the result against the schema.
    fn check_value(
        &self,
        param: &Value,
        location: &Location,
        raw: &[String],
        problems: &mut Vec<Problem>,
    ) {
        let Some(raw_schema) = param.get("schema") else {
            return;
        };
        let param_schema = match self.resolve(raw_schema) {
            Ok(s) => s,
            Err(message) => {
                problems.push(Problem::new(Location::Spec, message));
                return;
            }
        };
        let schema_type = param_schema.get("type").and_then(Value::as_str);
        let value = if schema_type == Some("array") {
            // style form: explode (the default) repeats the key, otherwise
            // one key holds a comma-separated list.
            let explode = param
                .get("explode")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let items_type = param_schema
                .get("items")
                .and_then(|i| self.resolve(i).ok())
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str);
            let parts: Vec<&str> = if explode {
                raw.iter().map(String::as_str).collect()
            } else {
                raw.iter().flat_map(|v| v.split(',')).collect()
            };
            let mut items = Vec::new();
            for part in parts {
                match typed(part, items_type) {
                    Ok(v) => items.push(v),
                    Err(message) => {
                        problems.push(Problem::new(location.clone(), message));
                        return;
                    }
                }
            }
            Value::Array(items)
        } else {
            if raw.len() > 1 {
                problems.push(Problem::new(
                    location.clone(),
                    format!("sent {} times; the parameter is not an array", raw.len()),
                ));
                return;
            }
            let Some(first) = raw.first() else {
                return;
            };
            match typed(first, schema_type) {
                Ok(v) => v,
                Err(message) => {
                    problems.push(Problem::new(location.clone(), message));
                    return;
                }
            }
        };
        let before = problems.len();
        self.check_against(param_schema, &value, problems, |_| location.clone());
        if problems.len() == before {
            described_maximum(param, param_schema, location, &value, problems);
        }
    }

    fn check_body(&self, def: &OperationDef, request: &Recorded, problems: &mut Vec<Problem>) {
        let request_body = match def.op.get("requestBody").map(|b| self.resolve(b)) {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(message)) => {
                problems.push(Problem::new(Location::Spec, message));
                return;
            }
        };
        let Some(body) = &request.body else {
            if request_body.is_some_and(is_required) {
                problems.push(Problem::new(
                    Location::Body(String::new()),
                    "required, missing",
                ));
            }
            return;
        };
        let Some(request_body) = request_body else {
            problems.push(Problem::new(
                Location::Body(String::new()),
                format!("{} {} takes no request body", def.method, def.template),
            ));
            return;
        };
        let content = request_body.get("content").and_then(Value::as_object);
        let media_types: Vec<&str> = content
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        let Some(json_media) = media_types.iter().find(|m| is_json(m)) else {
            problems.push(Problem::new(
                Location::Body(String::new()),
                format!(
                    "sent as JSON, but the operation takes only {}",
                    media_types.join(", ")
                ),
            ));
            return;
        };
        match request.header("content-type") {
            None => problems.push(Problem::new(
                Location::Header("content-type".into()),
                format!("missing; the body is JSON ({json_media})"),
            )),
            Some(sent) => {
                let media = sent.split(';').next().unwrap_or_default().trim();
                if !media_types.iter().any(|m| m.eq_ignore_ascii_case(media)) {
                    problems.push(Problem::new(
                        Location::Header("content-type".into()),
                        format!("`{sent}`; the operation takes {}", media_types.join(", ")),
                    ));
                }
            }
        }
        let Some(body_schema) = content
            .and_then(|c| c.get(*json_media))
            .and_then(|m| m.get("schema"))
        else {
            return;
        };
        self.check_against(body_schema, body, problems, |pointer| {
            Location::Body(pointer.to_owned())
        });
    }

    /// Validates `value` against an OpenAPI schema; each error goes to the
    /// location `at` gives for its JSON pointer.
    fn check_against(
        &self,
        openapi_schema: &Value,
        value: &Value,
        problems: &mut Vec<Problem>,
        at: impl Fn(&str) -> Location,
    ) {
        let validator =
            schema::to_json_schema(self, openapi_schema).and_then(|s| schema::compile(&s));
        match validator {
            Ok(validator) => {
                for (pointer, message) in schema::errors(&validator, value) {
                    problems.push(Problem::new(at(&pointer), message));
                }
            }
            Err(message) => problems.push(Problem::new(Location::Spec, message)),
        }
    }
}

fn check_headers(request: &Recorded, params: &[Value], problems: &mut Vec<Problem>) {
    for param in params
        .iter()
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("header"))
    {
        let name = param
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if is_required(param) && request.header(name).is_none() {
            problems.push(Problem::new(
                Location::Header(name.to_owned()),
                "required, missing",
            ));
        }
    }
}

/// Whether `scheme` finds its credential in the request, and how it reads in
/// a problem (`header `x-api-token``).
fn credential_present(
    scheme: &Value,
    request: &Recorded,
    query_names: &mut Vec<String>,
) -> (bool, String) {
    let kind = scheme
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = scheme
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let authorization = |prefix: &str| {
        request.header("authorization").is_some_and(|v| {
            v.len() > prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)
        })
    };
    match (kind, scheme.get("in").and_then(Value::as_str)) {
        ("apiKey", Some("header")) => (
            request.header(name).is_some_and(|v| !v.trim().is_empty()),
            format!("header `{name}`"),
        ),
        ("apiKey", Some("query")) => {
            query_names.push(name.to_owned());
            (
                request
                    .query
                    .iter()
                    .any(|(k, v)| k == name && !v.is_empty()),
                format!("query `{name}`"),
            )
        }
        ("apiKey", Some("cookie")) => (
            request.header("cookie").is_some_and(|c| {
                c.split(';')
                    .any(|p| p.trim().starts_with(&format!("{name}=")))
            }),
            format!("cookie `{name}`"),
        ),
        ("http", _) => {
            let scheme_name = scheme
                .get("scheme")
                .and_then(Value::as_str)
                .unwrap_or("bearer");
            let prefix = format!("{scheme_name} ");
            (
                authorization(&prefix),
                format!("`Authorization: {scheme_name} …`"),
            )
        }
        ("oauth2" | "openIdConnect", _) => (
            authorization("bearer "),
            "`Authorization: Bearer …`".to_owned(),
        ),
        _ => (
            false,
            format!("an unsupported security scheme type `{kind}`"),
        ),
    }
}

/// A query or path string as the JSON value its schema type means.
fn typed(raw: &str, schema_type: Option<&str>) -> Result<Value, String> {
    match schema_type {
        Some("integer") => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{raw}` is not an integer")),
        Some("number") => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{raw}` is not a number")),
        Some("boolean") => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not a boolean (true or false)")),
        },
        _ => Ok(Value::String(raw.to_owned())),
    }
}

/// Pipedrive's v2 documents state the page-size cap only in words ("Please
/// note that a maximum value of 500 is allowed."); a number parameter whose
/// schema has no `maximum` is held to that sentence.
fn described_maximum(
    param: &Value,
    param_schema: &Value,
    location: &Location,
    value: &Value,
    problems: &mut Vec<Problem>,
) {
    if param_schema.get("maximum").is_some() {
        return;
    }
    let Some(description) = param.get("description").and_then(Value::as_str) else {
        return;
    };
    const SENTENCE: &str = "a maximum value of ";
    let Some(start) = description.find(SENTENCE) else {
        return;
    };
    let after = &description[start + SENTENCE.len()..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    if !after[digits.len()..].starts_with(" is allowed") {
        return;
    }
    let (Ok(limit), Some(sent)) = (digits.parse::<f64>(), value.as_f64()) else {
        return;
    };
    if sent > limit {
        problems.push(Problem::new(
            location.clone(),
            format!(
                "{value} is above maximum {digits} (stated in the parameter's description; \
                 its schema has no `maximum`)"
            ),
        ));
    }
}

fn find_param<'a>(params: &'a [Value], place: &str, name: &str) -> Option<&'a Value> {
    params.iter().find(|p| {
        p.get("in").and_then(Value::as_str) == Some(place)
            && p.get("name").and_then(Value::as_str) == Some(name)
    })
}

fn is_required(value: &Value) -> bool {
    value.get("required").and_then(Value::as_bool) == Some(true)
}

fn is_json(media_type: &str) -> bool {
    let media_type = media_type.to_ascii_lowercase();
    media_type == "application/json" || media_type.ends_with("+json")
}

fn matches_template(template: &[Segment], sent: &[&str]) -> bool {
    template.len() == sent.len()
        && template.iter().zip(sent).all(|(t, s)| match t {
            Segment::Literal(l) => l == s,
            Segment::Param(_) => !s.is_empty(),
        })
}

/// Orders templates most specific first: at the first segment where they
/// differ in kind, a literal comes before a parameter.
fn specificity(a: &[Segment], b: &[Segment]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Segment::Literal(_), Segment::Param(_)) => return Ordering::Less,
            (Segment::Param(_), Segment::Literal(_)) => return Ordering::Greater,
            _ => {}
        }
    }
    Ordering::Equal
}

/// Decodes `%XX` escapes in a path segment (not `+`, which is literal in a
/// path); an invalid escape is kept as sent.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_handles_escapes_and_leaves_bad_ones() {
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(percent_decode("a+b%zz%4"), "a+b%zz%4");
    }

    #[test]
    fn typed_reads_query_strings_by_schema_type() {
        assert_eq!(typed("10", Some("integer")), Ok(Value::from(10)));
        assert!(typed("1.5", Some("integer")).is_err());
        assert_eq!(typed("true", Some("boolean")), Ok(Value::Bool(true)));
        assert!(typed("1", Some("boolean")).is_err());
        assert!(typed("NaN", Some("number")).is_err());
        assert_eq!(typed("x", None), Ok(Value::from("x")));
    }
}
