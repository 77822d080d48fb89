//! The two OpenAPI documents, loaded once, and the lookup of an operation by
//! method and path.

use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

/// The Pipedrive OpenAPI v1 document (leads, notes, users, webhooks, …),
/// embedded verbatim; see `openapi/README.md` for its origin and sha256.
const V1_YAML: &str = include_str!("../openapi/openapi-v1.yaml");
/// The Pipedrive OpenAPI v2 document (persons, deals, activities, search,
/// lead conversion), embedded verbatim.
const V2_YAML: &str = include_str!("../openapi/openapi-v2.yaml");

/// Which of Pipedrive's two API documents an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// `openapi-v1.yaml`, served under `/api/v1` on the company domain.
    V1,
    /// `openapi-v2.yaml`, served under `/api/v2`.
    V2,
}

impl ApiVersion {
    /// The path prefix a client sends on the company domain (`/api/v1`,
    /// `/api/v2`).
    pub fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V1 => "/api/v1",
            ApiVersion::V2 => "/api/v2",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        })
    }
}

/// A document that could not be used as an OpenAPI description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

/// One segment of a path template: `persons` or `{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Param(String),
}

/// One operation of the document, indexed for matching.
#[derive(Debug, Clone)]
pub(crate) struct OperationDef {
    /// Upper case: `GET`, `POST`, …
    pub(crate) method: String,
    /// The template as written in the document: `/persons/{id}`.
    pub(crate) template: String,
    pub(crate) segments: Vec<Segment>,
    /// The path item's own `parameters` (shared by its operations), or null.
    pub(crate) item_params: Value,
    /// The operation object.
    pub(crate) op: Value,
}

/// A loaded OpenAPI document with its operations indexed.
///
/// Get the embedded ones with [`Spec::v1`] and [`Spec::v2`] (parsed once per
/// process), or load another text with [`Spec::from_yaml`].
#[derive(Debug)]
pub struct Spec {
    version: ApiVersion,
    openapi: String,
    base_path: String,
    doc: Value,
    operations: Vec<OperationDef>,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl Spec {
    /// The embedded `openapi-v1.yaml`, parsed on first use.
    ///
    /// # Panics
    ///
    /// Only if the embedded file does not parse, which this crate's tests
    /// rule out; requests never make it panic.
    pub fn v1() -> &'static Spec {
        static V1: OnceLock<Spec> = OnceLock::new();
        V1.get_or_init(|| {
            Spec::from_yaml(ApiVersion::V1, V1_YAML).expect("embedded openapi-v1.yaml loads")
        })
    }

    /// The embedded `openapi-v2.yaml`, parsed on first use.
    ///
    /// # Panics
    ///
    /// Only if the embedded file does not parse (see [`Spec::v1`]).
    pub fn v2() -> &'static Spec {
        static V2: OnceLock<Spec> = OnceLock::new();
        V2.get_or_init(|| {
            Spec::from_yaml(ApiVersion::V2, V2_YAML).expect("embedded openapi-v2.yaml loads")
        })
    }

    /// The embedded document for `version`.
    pub fn get(version: ApiVersion) -> &'static Spec {
        match version {
            ApiVersion::V1 => Spec::v1(),
            ApiVersion::V2 => Spec::v2(),
        }
    }

    /// Parses an OpenAPI 3.0 or 3.1 document from YAML (JSON is YAML too).
    ///
    /// # Errors
    ///
    /// When the text is not YAML, has no `openapi` 3.x version, no
    /// `servers[0].url` or no `paths` object.
    pub fn from_yaml(version: ApiVersion, text: &str) -> Result<Spec, SpecError> {
        let doc: Value = serde_saphyr::from_str(text)
            .map_err(|e| SpecError(format!("the {version} document is not YAML: {e}")))?;
        let openapi = doc
            .get("openapi")
            .and_then(Value::as_str)
            .filter(|v| v.starts_with("3."))
            .ok_or_else(|| SpecError(format!("the {version} document has no `openapi: 3.x`")))?
            .to_owned();
        let server = doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .ok_or_else(|| SpecError(format!("the {version} document has no `servers[0].url`")))?;
        let base_path = server_path(server);
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or_else(|| SpecError(format!("the {version} document has no `paths`")))?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let Some(item_obj) = item.as_object() else {
                continue;
            };
            // A path item with its own servers (Pipedrive's OAuth endpoints on
            // oauth.pipedrive.com) is not under the API base path.
            if item_obj.contains_key("servers") {
                continue;
            }
            let segments = parse_template(template);
            for method in METHODS {
                let Some(op) = item_obj.get(method) else {
                    continue;
                };
                if op.get("servers").is_some() {
                    continue;
                }
                operations.push(OperationDef {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments: segments.clone(),
                    item_params: item.get("parameters").cloned().unwrap_or(Value::Null),
                    op: op.clone(),
                });
            }
        }
        Ok(Spec {
            version,
            openapi,
            base_path,
            doc,
            operations,
        })
    }

    /// Which document this is.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// The document's `openapi:` field (`3.0.1` for both Pipedrive files).
    pub fn openapi_version(&self) -> &str {
        &self.openapi
    }

    /// Whether the document is OpenAPI 3.0 (schemas use `nullable`), not 3.1.
    pub(crate) fn is_openapi_30(&self) -> bool {
        self.openapi.starts_with("3.0")
    }

    /// The path of `servers[0].url`: `/v1` or `/api/v2`.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The whole document as JSON.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// How many operations (method and path) the document describes under its
    /// base path.
    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }

    pub(crate) fn operations(&self) -> &[OperationDef] {
        &self.operations
    }

    /// The rest of `path` after this document's base path, if it is under it.
    ///
    /// Both the server's own path (`/v1/leads`) and the company-domain form
    /// (`/api/v1/leads`) are accepted: Pipedrive serves v1 under both, and
    /// the v2 server already is `/api/v2`.
    pub fn strip_base<'p>(&self, path: &'p str) -> Option<&'p str> {
        let mut prefixes = vec![self.base_path.clone()];
        if !self.base_path.starts_with("/api/") {
            prefixes.push(format!("/api{}", self.base_path));
        }
        prefixes.iter().find_map(|prefix| {
            let rest = path.strip_prefix(prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some(rest)
        })
    }

    /// Follows a local `$ref` (`#/components/…`) until a non-reference value,
    /// at most 32 steps.
    pub(crate) fn resolve<'a>(&'a self, mut value: &'a Value) -> Result<&'a Value, String> {
        for _ in 0..32 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(value);
            };
            value = self.pointer(reference)?;
        }
        Err("`$ref` chain longer than 32 steps".to_owned())
    }

    /// The value a local reference (`#/components/schemas/X`) points at.
    pub(crate) fn pointer(&self, reference: &str) -> Result<&Value, String> {
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("`$ref` {reference} is not local to the document"))?;
        self.doc
            .pointer(pointer)
            .ok_or_else(|| format!("`$ref` {reference} points at nothing"))
    }
}

/// The path part of a server URL: `https://api.pipedrive.com/v1` → `/v1`.
fn server_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.trim_end_matches('/').to_owned()
}

fn parse_template(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_path_takes_the_path_of_the_url() {
        assert_eq!(server_path("https://api.pipedrive.com/v1"), "/v1");
        assert_eq!(server_path("https://api.pipedrive.com/api/v2/"), "/api/v2");
        assert_eq!(server_path("https://api.pipedrive.com"), "");
    }

    #[test]
    fn templates_split_into_literals_and_params() {
        assert_eq!(
            parse_template("/persons/{id}"),
            vec![
                Segment::Literal("persons".into()),
                Segment::Param("id".into())
            ]
        );
    }
}
