//! Links from a message to the lead, in whatever tool people open leads
//! in (the CRM, our dashboard).

use lead_core::LeadExtId;

use crate::error::ConfigError;

/// The placeholder a link template holds.
const PLACEHOLDER: &str = "{ext_id}";

/// Builds the link to a lead from a template such as
/// `https://crm.example.com/leads/{ext_id}`, or none when no template is
/// configured (messages then carry no button or link).
///
/// # Example
///
/// ```
/// use lead_core::LeadExtId;
/// use lead_notify::LeadLinks;
///
/// let links = LeadLinks::new(Some("https://crm.example.com/leads/{ext_id}")).unwrap();
/// let id = LeadExtId::parse("WEB-7KQ2M9XA").unwrap();
/// assert_eq!(links.url(&id).as_deref(), Some("https://crm.example.com/leads/WEB-7KQ2M9XA"));
/// assert_eq!(LeadLinks::none().url(&id), None);
/// assert!(LeadLinks::new(Some("https://crm.example.com/leads")).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadLinks {
    template: Option<String>,
}

impl LeadLinks {
    /// Reads a template; `None` or a blank one gives [`LeadLinks::none`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::LinkTemplate`] when the template has no `{ext_id}`,
    /// or is not an http(s) URL with a host and without credentials (a
    /// link is shown to people: a password in it would be shown too).
    pub fn new(template: Option<&str>) -> Result<Self, ConfigError> {
        let Some(template) = template.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(LeadLinks::none());
        };
        if !template.contains(PLACEHOLDER) {
            return Err(ConfigError::LinkTemplate(format!(
                "must contain {PLACEHOLDER}, where the lead's id goes"
            )));
        }
        // Ids are `WEB-` and letters and digits: any id makes the same URL
        // shape, so one sample checks them all.
        let sample = template.replace(PLACEHOLDER, "WEB-23456789");
        let url = url::Url::parse(&sample)
            .map_err(|e| ConfigError::LinkTemplate(format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::LinkTemplate(
                "must be an http or https URL".into(),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::LinkTemplate("must name a host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::LinkTemplate(
                "must not carry credentials (people see the link)".into(),
            ));
        }
        Ok(LeadLinks {
            template: Some(template.to_owned()),
        })
    }

    /// No links.
    pub fn none() -> Self {
        LeadLinks { template: None }
    }

    /// The link to the lead `ext_id`, when a template is configured.
    pub fn url(&self, ext_id: &LeadExtId) -> Option<String> {
        self.template
            .as_ref()
            .map(|t| t.replace(PLACEHOLDER, ext_id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_fills_in_every_placeholder() {
        let links = LeadLinks::new(Some(
            " https://crm.example.com/leads/{ext_id}?ref={ext_id} ",
        ))
        .unwrap();
        let id = LeadExtId::parse("WEB-7KQ2M9XA").unwrap();
        assert_eq!(
            links.url(&id).as_deref(),
            Some("https://crm.example.com/leads/WEB-7KQ2M9XA?ref=WEB-7KQ2M9XA")
        );
    }

    #[test]
    fn no_template_or_a_blank_one_gives_no_links() {
        let id = LeadExtId::parse("WEB-7KQ2M9XA").unwrap();
        assert_eq!(LeadLinks::new(None).unwrap().url(&id), None);
        assert_eq!(LeadLinks::new(Some("  ")).unwrap(), LeadLinks::none());
    }

    #[test]
    fn bad_templates_are_refused_naming_the_setting() {
        for (template, says) in [
            ("https://crm.example.com/leads", "{ext_id}"),
            ("crm.example.com/leads/{ext_id}", "not a URL"),
            ("javascript:alert({ext_id})", "http or https"),
            ("ftp://crm.example.com/{ext_id}", "http or https"),
            ("https://me:pw@crm.example.com/{ext_id}", "credentials"),
        ] {
            let err = LeadLinks::new(Some(template))
                .expect_err(template)
                .to_string();
            assert!(err.starts_with("lead link template "), "{err}");
            assert!(err.contains(says), "{template}: {err}");
        }
    }
}
