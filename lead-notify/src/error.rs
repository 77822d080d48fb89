//! Configuration errors (refused when a notifier is built, naming the
//! setting to fix), and the one reading of HTTP answers that Slack and the
//! webhooks share.

use std::path::PathBuf;

/// A notifier's configuration that cannot work. Each message names the
/// setting to fix and never shows a secret (the Slack URL carries its
/// token, so its message says what is wrong without quoting it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `SLACK_WEBHOOK_URL` is not a usable incoming-webhook URL.
    #[error("SLACK_WEBHOOK_URL {0}")]
    SlackWebhookUrl(&'static str),
    /// A webhook subscriber's URL is refused (scheme, credentials, or an
    /// address the SSRF guard forbids).
    #[error("webhook subscriber \"{subscriber}\": url {reason}")]
    WebhookUrl {
        /// The subscriber's name.
        subscriber: String,
        /// What is wrong with its URL.
        reason: String,
    },
    /// The lead link template is not an http(s) URL with `{ext_id}`. The
    /// template may come from more than one place (the server reads
    /// `LEAD_LINK_URL` or its notifications file), so the message says
    /// "lead link template" and the caller names the source.
    #[error("lead link template {0}")]
    LinkTemplate(String),
    /// An SMTP setting (`SMTP_HOST`, `SMTP_FROM`, ...) cannot work.
    #[error("{setting} {reason}")]
    Smtp {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An e-mail template (a built-in one, or a file of the templates
    /// directory) cannot be read, does not compile or does not render.
    #[error("e-mail template {}: {reason}", path.display())]
    Template {
        /// The file (the built-in template's name for a built-in one).
        path: PathBuf,
        /// What is wrong, with the line when the template engine says.
        reason: String,
    },
    /// The HTTP client could not be built (the TLS backend failed to
    /// initialise).
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
}

#[cfg(any(feature = "slack", feature = "webhooks"))]
pub(crate) use answers::{answer_of, read_start, said, transport};

/// How an HTTP answer reads, for Slack and the webhooks alike: the rules
/// live here once, so both channels retry and park the same way.
#[cfg(any(feature = "slack", feature = "webhooks"))]
mod answers {
    use std::time::Duration;

    use lead_core::Error;
    use lead_core::ports::Delivery;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, RETRY_AFTER};

    /// The most of an answer's body kept for an error message.
    const SAID_MAX: usize = 200;

    /// A failed transport (connect, TLS, timeout, a body cut short):
    /// temporary. The URL is taken out of the error first: Slack's carries
    /// its token.
    pub(crate) fn transport(who: &str, err: reqwest::Error) -> Error {
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "could not be reached"
        } else {
            "did not complete"
        };
        Error::unavailable(format!("{who} {what}")).caused_by(err.without_url())
    }

    /// The most of an answer's body read: enough for an error message or
    /// Slack's `ok`, and a receiver that answers with megabytes costs us
    /// no more.
    const BODY_MAX: usize = 4 * 1024;

    /// The start of an answer's body (up to [`BODY_MAX`] bytes).
    pub(crate) async fn read_start(mut response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
        let mut body = Vec::new();
        while body.len() < BODY_MAX
            && let Some(chunk) = response.chunk().await?
        {
            body.extend_from_slice(&chunk);
        }
        body.truncate(BODY_MAX);
        Ok(body)
    }

    /// An answer's body as one short line for an error message.
    pub(crate) fn said(body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match line.char_indices().nth(SAID_MAX) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line,
        }
    }

    /// `Retry-After` as seconds or as an HTTP date, when the answer has
    /// one that reads.
    fn retry_after(headers: &HeaderMap) -> Option<Duration> {
        let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let wait = at.signed_duration_since(chrono::Utc::now());
        Some(wait.to_std().unwrap_or_default())
    }

    /// An answer by what it means (Standard Webhooks' delivery rules,
    /// which Slack's answers fit): 2xx is delivered; a redirect is never
    /// followed and fails for good (the URL needs changing); 429 waits
    /// `Retry-After`; 502, 503 and 504 are temporary and wait
    /// `Retry-After` when they give one (reported as
    /// [`Error::RateLimited`], the one category that carries a wait);
    /// other 5xx and 408 are temporary; 401 and 403 are refused
    /// credentials, 404 and 410 an endpoint that is gone (410: the
    /// receiver asks to stop), any other 4xx refuses the notification.
    /// `who` names the channel, `said` is what the body said.
    pub(crate) fn answer_of(
        who: &str,
        status: StatusCode,
        headers: &HeaderMap,
        said: &str,
    ) -> Result<Delivery, Error> {
        if status.is_success() {
            return Ok(Delivery::Sent);
        }
        let answered = if said.is_empty() {
            format!("{who} answered {status}")
        } else {
            format!("{who} answered {status}: {said}")
        };
        Err(match status.as_u16() {
            300..=399 => Error::NotAllowed(format!(
                "{answered} (a redirect, not followed: the URL needs updating)"
            )),
            429 => Error::RateLimited {
                retry_after: retry_after(headers),
            },
            502..=504 => match retry_after(headers) {
                Some(wait) => Error::RateLimited {
                    retry_after: Some(wait),
                },
                None => Error::unavailable(answered),
            },
            408 | 500..=599 => Error::unavailable(answered),
            401 | 403 => Error::Unauthorized(answered),
            410 => Error::NotFound(format!(
                "{answered} (the receiver asks to disable this endpoint)"
            )),
            404 => Error::NotFound(answered),
            _ => Error::NotAllowed(answered),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().expect("a header value"));
            }
            map
        }

        fn answer(status: u16, pairs: &[(&'static str, &str)]) -> Result<Delivery, Error> {
            let status = StatusCode::from_u16(status).expect("a status");
            answer_of("receiver", status, &headers(pairs), "said")
        }

        #[test]
        fn success_is_sent_and_every_other_answer_is_classified() {
            assert!(matches!(answer(200, &[]), Ok(Delivery::Sent)));
            assert!(matches!(answer(204, &[]), Ok(Delivery::Sent)));
            for permanent in [301, 302, 307, 308, 400, 401, 403, 404, 410, 413, 422] {
                let err = answer(permanent, &[]).expect_err("an error");
                assert!(!err.is_temporary(), "{permanent}: {err:?}");
            }
            for temporary in [408, 429, 500, 502, 503, 504, 599] {
                let err = answer(temporary, &[]).expect_err("an error");
                assert!(err.is_temporary(), "{temporary}: {err:?}");
            }
        }

        #[test]
        fn retry_after_is_honoured_on_429_and_on_gateway_errors() {
            for status in [429, 502, 503, 504] {
                let err = answer(status, &[("retry-after", "7")]).expect_err("an error");
                assert!(
                    matches!(err, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)),
                    "{status}: {err:?}"
                );
            }
            let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
            let err = answer(503, &[("retry-after", &later)]).expect_err("an error");
            assert!(
                matches!(err, Error::RateLimited { retry_after: Some(d) } if d > Duration::from_secs(100)),
                "{err:?}"
            );
            assert!(matches!(
                answer(429, &[]),
                Err(Error::RateLimited { retry_after: None })
            ));
            assert!(matches!(answer(503, &[]), Err(Error::Unavailable(..))));
        }

        #[test]
        fn messages_name_the_channel_the_status_and_what_the_body_said() {
            let gone = answer(410, &[]).expect_err("an error").to_string();
            assert!(gone.contains("receiver answered 410 Gone: said"), "{gone}");
            assert!(gone.contains("disable this endpoint"), "{gone}");
            let moved = answer(301, &[]).expect_err("an error").to_string();
            assert!(moved.contains("not followed"), "{moved}");
        }

        #[test]
        fn said_is_one_short_line() {
            assert_eq!(said(b"  invalid_payload\n"), "invalid_payload");
            assert_eq!(said(b"a\r\n  b\tc"), "a b c");
            let long = said("é".repeat(500).as_bytes());
            assert_eq!(long.chars().count(), SAID_MAX + 1);
            assert!(long.ends_with('…'));
        }
    }
}
