//! What a person sees after posting a plain HTML form with no redirect
//! configured: a small, accessible page (a thank-you, or the fields to fix
//! with a way back) in their language, instead of raw JSON.
//!
//! Spanish and English, chosen by `Accept-Language`; English otherwise.
//! Every text that may come from the request is HTML-escaped, and the page
//! loads nothing (its Content-Security-Policy forbids it).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ErrorBody;

/// The languages the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Es,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }
}

/// `(value, q)` pairs of a comma-separated header with quality weights.
fn weighted(header: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    header.split(',').filter_map(|part| {
        let mut pieces = part.split(';');
        let value = pieces.next()?.trim().to_ascii_lowercase();
        if value.is_empty() {
            return None;
        }
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        Some((value, q.clamp(0.0, 1.0)))
    })
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The language of the request's `Accept-Language`, among ours: the one
/// with the highest weight (the first on a tie), English when none is.
pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    let mut best: Option<(Lang, f32)> = None;
    for (tag, q) in weighted(header_text(headers, header::ACCEPT_LANGUAGE)) {
        let lang = match tag.split('-').next() {
            Some("es") => Lang::Es,
            Some("en") => Lang::En,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((lang, q));
        }
    }
    best.map_or(Lang::En, |(lang, _)| lang)
}

/// True when the client asks for HTML before JSON, as a browser posting a
/// form does (`text/html` named explicitly and weighted above JSON; a
/// bare `*/*` from a script is not a preference for HTML).
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    let (mut html, mut json, mut any) = (None, None, 0.0f32);
    for (media, q) in weighted(header_text(headers, header::ACCEPT)) {
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = Some(html.unwrap_or(0.0f32).max(q)),
            "application/json" => json = Some(q),
            "*/*" => any = q,
            _ => {}
        }
    }
    html.is_some_and(|h| h > 0.0 && h > json.unwrap_or(any))
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}}\
         h1{{font-size:1.5rem}}a{{color:#0645ad}}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        lang = lang.code(),
        title = escape(title),
    )
}

/// A form field's name as people read it.
fn label(lang: Lang, field: &str) -> String {
    let known = match (lang, field) {
        (Lang::Es, "email") => "Correo electrónico",
        (Lang::En, "email") => "E-mail",
        (Lang::Es, "phone") => "Teléfono",
        (Lang::En, "phone") => "Phone",
        (Lang::Es, "first_name") => "Nombre",
        (Lang::En, "first_name") => "First name",
        (Lang::Es, "last_name") => "Apellidos",
        (Lang::En, "last_name") => "Last name",
        (Lang::Es, "company") => "Empresa",
        (Lang::En, "company") => "Company",
        (Lang::Es, "website") => "Sitio web",
        (Lang::En, "website") => "Website",
        _ => return field.replace('_', " "),
    };
    known.to_owned()
}

/// What to do without a link back (no allowed `Referer`).
fn back_button(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => "Vuelve atrás con el botón de tu navegador para corregirlo.",
        Lang::En => "Use your browser's Back button to correct it.",
    }
}

/// A field problem in the page's language, by its stable code; English
/// pages keep the server's own message.
fn message(lang: Lang, code: &str, english: &str) -> String {
    let spanish = match code {
        "required" => "es obligatorio",
        "invalid_email" => "no es una dirección de correo válida",
        "must_be_empty" => "debe quedar vacío",
        "invalid_character" => "contiene un carácter no permitido",
        "too_long" => "es demasiado largo",
        _ => "no es válido",
    };
    match lang {
        Lang::Es => spanish.to_owned(),
        Lang::En => english.to_owned(),
    }
}

/// The thank-you page of a stored lead.
pub(crate) fn thank_you(lang: Lang) -> Response {
    let (title, text) = match lang {
        Lang::Es => (
            "Gracias",
            "Hemos recibido tus datos. Nos pondremos en contacto contigo pronto.",
        ),
        Lang::En => (
            "Thank you",
            "We have received your details and will be in touch soon.",
        ),
    };
    html(
        StatusCode::ACCEPTED,
        document(
            lang,
            title,
            &format!("<h1>{}</h1>\n<p>{}</p>", escape(title), escape(text)),
        ),
    )
}

/// The page of a refused or failed post: what to fix, and a way back.
/// `back` is a link already checked to be on an allowed origin.
pub(crate) fn problem(
    lang: Lang,
    status: StatusCode,
    error: &ErrorBody,
    back: Option<&str>,
) -> Response {
    let (title, intro, link) = match (lang, error.fields.is_empty()) {
        (Lang::Es, false) => (
            "Revisa el formulario",
            "No hemos podido guardar tus datos. Corrige estos campos:",
            "Volver al formulario",
        ),
        (Lang::En, false) => (
            "Please check the form",
            "We could not save your details. Please correct these fields:",
            "Back to the form",
        ),
        (Lang::Es, true) => (
            "No se ha podido enviar",
            "No hemos podido guardar tus datos. Inténtalo de nuevo en unos minutos.",
            "Volver al formulario",
        ),
        (Lang::En, true) => (
            "Your form was not sent",
            "We could not save your details. Please try again in a few minutes.",
            "Back to the form",
        ),
    };
    let mut body = format!(
        "<h1>{}</h1>\n<div role=\"alert\">\n<p>{}</p>\n",
        escape(title),
        escape(intro)
    );
    if !error.fields.is_empty() {
        body.push_str("<ul>\n");
        for field in &error.fields {
            body.push_str(&format!(
                "<li><strong>{}</strong>: {}</li>\n",
                escape(&label(lang, &field.field)),
                escape(&message(lang, &field.code, &field.message))
            ));
        }
        body.push_str("</ul>\n");
    }
    body.push_str("</div>\n");
    match back {
        Some(href) => body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(href),
            escape(link)
        )),
        // The page allows no script (its CSP), so no `history.back()`.
        None => body.push_str(&format!("<p>{}</p>", escape(back_button(lang)))),
    }
    html(status, document(lang, title, &body))
}

fn html(status: StatusCode, page: String) -> Response {
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).expect("valid"));
        }
        map
    }

    #[test]
    fn browsers_prefer_html_and_scripts_do_not() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(prefers_html(&headers(&[(header::ACCEPT, browser)])));
        assert!(!prefers_html(&headers(&[(header::ACCEPT, "*/*")])));
        assert!(!prefers_html(&headers(&[])));
        assert!(!prefers_html(&headers(&[(
            header::ACCEPT,
            "application/json, text/html;q=0.5"
        )])));
        assert!(!prefers_html(&headers(&[(
            header::ACCEPT,
            "text/html;q=0"
        )])));
    }

    #[test]
    fn the_language_follows_accept_language_weights() {
        let lang = |value: &str| lang_of(&headers(&[(header::ACCEPT_LANGUAGE, value)]));
        assert_eq!(lang("es-ES,es;q=0.9,en;q=0.8"), Lang::Es);
        assert_eq!(lang("en-GB,es;q=0.9"), Lang::En);
        assert_eq!(lang("fr-FR,es;q=0.5,en;q=0.9"), Lang::En);
        assert_eq!(lang("de"), Lang::En);
        assert_eq!(lang("es;q=0"), Lang::En);
        assert_eq!(lang_of(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn request_text_is_escaped() {
        let error = ErrorBody {
            error: "invalid",
            message: "bad".into(),
            fields: vec![lead_core::FieldError::new(
                "email",
                "invalid_email",
                "<script>alert(1)</script>",
            )],
        };
        let page = futures_body(problem(
            Lang::En,
            StatusCode::UNPROCESSABLE_ENTITY,
            &error,
            Some("https://example.com/f?a=1&b=\"x\""),
        ));
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("href=\"https://example.com/f?a=1&amp;b=&quot;x&quot;\""));
        let page = futures_body(problem(
            Lang::Es,
            StatusCode::UNPROCESSABLE_ENTITY,
            &error,
            None,
        ));
        assert!(page.contains("lang=\"es\""));
        assert!(page.contains("Correo electrónico"));
        assert!(
            page.contains("no es una dirección de correo válida"),
            "Spanish pages say it in Spanish: {page}"
        );
        assert!(page.contains("botón de tu navegador"));
        let without_back = futures_body(problem(
            Lang::En,
            StatusCode::UNPROCESSABLE_ENTITY,
            &error,
            None,
        ));
        assert!(!without_back.contains("javascript:"), "{without_back}");
        assert!(without_back.contains("Back button"));
    }

    fn futures_body(response: Response) -> String {
        let body = response.into_body();
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(axum::body::to_bytes(body, usize::MAX))
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }
}
