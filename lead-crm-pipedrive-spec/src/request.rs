//! A request as a client sent it, recorded for validation.

use serde_json::Value;

use crate::problem::{Location, Problem};

/// One HTTP request as the adapter sent it.
///
/// Build it from what a mock server received with [`Recorded::from_http`],
/// or by hand with [`Recorded::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The HTTP method, any case (`GET`, `post`).
    pub method: String,
    /// The path as sent, with the version prefix and without the query:
    /// `/api/v2/persons/search`. Percent-encoded segments are decoded
    /// before a path parameter is checked.
    pub path: String,
    /// The query pairs in order, already percent-decoded (`term` =
    /// `jane@acme.example`). A key sent twice appears twice.
    pub query: Vec<(String, String)>,
    /// The headers in any case (`x-api-token`, `Content-Type`).
    pub headers: Vec<(String, String)>,
    /// The JSON body, if one was sent.
    pub body: Option<Value>,
}

impl Recorded {
    /// A request with no query, headers or body.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Recorded {
            method: method.into(),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds one query pair (already decoded).
    #[must_use]
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Adds one header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a JSON body and, as a JSON client does, the header
    /// `content-type: application/json` unless one is already there.
    #[must_use]
    pub fn with_json_body(mut self, body: Value) -> Self {
        if self.header("content-type").is_none() {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self.body = Some(body);
        self
    }

    /// A request from the raw parts a server sees: the method, the request
    /// target (`/api/v2/persons/search?term=jane%40acme.example`), the
    /// headers and the body bytes (empty for none).
    ///
    /// The query is decoded as `application/x-www-form-urlencoded` (`+` is a
    /// space), which is how `reqwest`'s `.query()` encodes it.
    ///
    /// # Errors
    ///
    /// A body that is not empty and not JSON gives a problem at `body`.
    pub fn from_http<K, V>(
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = (K, V)>,
        body: &[u8],
    ) -> Result<Self, Problem>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(serde_json::from_slice(body).map_err(|e| {
                Problem::new(
                    Location::Body(String::new()),
                    format!("not JSON ({e}); only JSON bodies are validated"),
                )
            })?)
        };
        Ok(Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            body,
        })
    }

    /// The first value of a header, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_http_decodes_the_query_and_parses_the_body() {
        let r = Recorded::from_http(
            "POST",
            "/api/v2/persons/search?term=jane%40acme.example&fields=email&x=a+b",
            [("X-Api-Token", "t")],
            br#"{"a":1}"#,
        )
        .unwrap();
        assert_eq!(r.path, "/api/v2/persons/search");
        assert_eq!(
            r.query,
            vec![
                ("term".into(), "jane@acme.example".into()),
                ("fields".into(), "email".into()),
                ("x".into(), "a b".into())
            ]
        );
        assert_eq!(r.header("x-api-token"), Some("t"));
        assert_eq!(r.body, Some(json!({"a": 1})));
    }

    #[test]
    fn from_http_refuses_a_body_that_is_not_json() {
        let err =
            Recorded::from_http("POST", "/api/v1/leads", [("a", "b")], b"title=x").unwrap_err();
        assert!(err.to_string().starts_with("body: not JSON"), "{err}");
    }

    #[test]
    fn from_http_reads_an_empty_body_as_none() {
        let r = Recorded::from_http::<&str, &str>("GET", "/api/v1/users", [], b"").unwrap();
        assert_eq!(r.body, None);
        assert!(r.query.is_empty());
    }
}
