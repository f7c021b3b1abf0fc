//! The two formats `/metrics` is written in, and which one a scraper asked for.
//!
//! Prometheus asks for OpenMetrics in its `Accept` header (and falls back to the older text
//! format); `curl` and most other readers ask for nothing in particular. The formats name a
//! counter differently: OpenMetrics declares the family (`# TYPE x_requests counter`) and
//! its sample is `x_requests_total`, where the 0.0.4 text format declares the sample's own name
//! (`# TYPE x_requests_total counter`). Each is written by `prometheus-client`'s encoder for
//! it, so a parser of either format reads every counter as a counter.

use prometheus_client::registry::Registry;

/// A format of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4: what a reader gets unless it asks for
    /// OpenMetrics.
    Text,
    /// OpenMetrics 1.0.0 text, ending in `# EOF`.
    OpenMetrics,
}

/// OpenMetrics' media type, as its specification names it.
const OPENMETRICS: &str = "application/openmetrics-text";

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when the header names it, with a
    /// weight no lower than the text format's (`text/plain`, or a range that covers it);
    /// the text format otherwise, a missing or unreadable header included.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut openmetrics: Option<f32> = None;
        let mut text: Option<(u8, f32)> = None;
        for range in mime::MimeIter::new(accept).filter_map(Result::ok) {
            let weight = range
                .get_param("q")
                .and_then(|q| q.as_str().parse::<f32>().ok())
                .unwrap_or(1.0);
            if range.essence_str() == OPENMETRICS {
                openmetrics = Some(openmetrics.map_or(weight, |best| best.max(weight)));
            }
            // The most specific range that covers text/plain gives its weight.
            let specificity = match (range.type_().as_str(), range.subtype().as_str()) {
                ("text", "plain") => 2,
                ("text", "*") => 1,
                ("*", "*") => 0,
                _ => continue,
            };
            text = match text {
                Some((best, kept)) if best > specificity => Some((best, kept)),
                Some((best, kept)) if best == specificity => Some((best, kept.max(weight))),
                _ => Some((specificity, weight)),
            };
        }
        match openmetrics {
            Some(weight) if weight > 0.0 && text.is_none_or(|(_, text)| weight >= text) => {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Every metric of `registry`, written whole in this format (OpenMetrics' `# EOF`
    /// included).
    pub fn encode(self, registry: &Registry) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, and the metrics' own encoders do not either.
        let _ = match self {
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, registry)
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, registry),
        };
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asking_for_openmetrics_first_gets_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
                          application/openmetrics-text;version=0.0.1;q=0.5,\
                          text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
                          text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    }

    #[test]
    fn a_reader_that_names_no_format_gets_the_text_format() {
        for accept in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("text/*"),
            Some(""),
        ] {
            assert_eq!(Format::negotiate(accept), Format::Text, "{accept:?}");
        }
    }

    #[test]
    fn the_text_format_weighed_higher_than_openmetrics_wins() {
        for accept in [
            "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5",
            "application/openmetrics-text;q=0.5,*/*",
            "application/openmetrics-text;q=0",
            "application/json",
        ] {
            assert_eq!(Format::negotiate(Some(accept)), Format::Text, "{accept}");
        }
    }

    #[test]
    fn openmetrics_named_alone_or_tied_with_text_is_chosen() {
        for accept in [
            "application/openmetrics-text",
            "application/openmetrics-text; version=1.0.0",
            "text/plain, application/openmetrics-text",
            "application/openmetrics-text;q=0.5,*/*;q=0.1",
        ] {
            assert_eq!(
                Format::negotiate(Some(accept)),
                Format::OpenMetrics,
                "{accept}"
            );
        }
    }
}
