//! `/metrics` read as Prometheus reads it: the text format parsed into samples (a name, its
//! labels, a value) and the metric families its `# TYPE` lines declare, so tests compare numbers
//! instead of searching text. Only what the format needs for our output: no timestamps,
//! escapes in label values are `\\`, `\"` and `\n`.
//!
//! And the official Python client's parsers ([`official_parse`]), which read each format as
//! strictly as Prometheus does: a sample its family's `# TYPE` line does not cover becomes a
//! family of its own, untyped.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::support::{must_run_everything, say_once_skipped};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// Family name to type (`counter`, `gauge`, `histogram`...), from the `# TYPE` lines.
    pub families: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses the text; a line that is not a comment, a sample or empty fails the test.
    pub fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            let line = line.trim();
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declared.split_once(' ').expect("# TYPE name kind");
                scrape.families.insert(name.into(), kind.trim().into());
            } else if line.is_empty() || line.starts_with('#') {
                continue;
            } else {
                scrape.samples.push(
                    sample(line).unwrap_or_else(|| panic!("not a Prometheus sample: {line}")),
                );
            }
        }
        scrape
    }

    /// The value of the sample `name` whose labels include `labels`, summed over the others
    /// (0 when none: a counter not yet incremented has no sample).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
            })
            .map(|sample| sample.value)
            .sum()
    }

    /// The sample names Prometheus stores for the declared families: a counter's `_total`, a
    /// histogram's `_bucket`, `_sum` and `_count`, a gauge's own name.
    pub fn series_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (family, kind) in &self.families {
            match kind.as_str() {
                // OpenMetrics declares the family, the 0.0.4 text format the sample's name.
                "counter" if family.ends_with("_total") => {
                    names.insert(family.clone());
                }
                "counter" => {
                    names.insert(format!("{family}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{family}{suffix}"));
                    }
                }
                _ => {
                    names.insert(family.clone());
                }
            }
        }
        names.extend(self.samples.iter().map(|sample| sample.name.clone()));
        names
    }
}

/// The environment variable that names the Python interpreter with `prometheus_client`
/// installed (tests/run.sh makes one).
const PYTHON_VARIABLE: &str = "SH_TEST_PROMETHEUS_PYTHON";

/// The families the Python client's parser for `format` (`openmetrics` or `text`) reads in
/// `text`, as JSON: each family's name, type and samples.
const OFFICIAL_PARSE: &str = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
families = text_string_to_metric_families(sys.stdin.read())
print(json.dumps([
    {"name": f.name, "type": f.type,
     "samples": [{"name": s.name, "labels": s.labels} for s in f.samples]}
    for f in families
]))
"#;

/// A metric family as the official parser reads it.
#[derive(Debug, Deserialize)]
pub struct Family {
    pub name: String,
    /// `counter`, `gauge`, `histogram`; `unknown` (0.0.4: `untyped`) when no `# TYPE` line
    /// covers its samples.
    #[serde(rename = "type")]
    pub kind: String,
    pub samples: Vec<OfficialSample>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct OfficialSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Which of the official client's parsers reads a text.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// `prometheus_client.parser`: the Prometheus text format, version 0.0.4.
    Text,
    /// `prometheus_client.openmetrics.parser`: OpenMetrics, strict (`# EOF` required).
    OpenMetrics,
}

/// `text` parsed by the official Python client, or `None` (said once) when no interpreter
/// with it is named and the run does not require every test. A text the parser refuses fails
/// the test with the parser's reason.
pub fn official_parse(format: Format, text: &str) -> Option<Vec<Family>> {
    let Some(python) = std::env::var_os(PYTHON_VARIABLE) else {
        assert!(
            !must_run_everything(),
            "{PYTHON_VARIABLE} names no Python with prometheus_client: tests/run.sh installs it"
        );
        say_once_skipped("the official Prometheus parsers' tests (no SH_TEST_PROMETHEUS_PYTHON)");
        return None;
    };
    let argument = match format {
        Format::Text => "text",
        Format::OpenMetrics => "openmetrics",
    };
    let mut child = Command::new(&python)
        .args(["-c", OFFICIAL_PARSE, argument])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{PYTHON_VARIABLE}={python:?} does not run: {error}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the text");
    let output = child.wait_with_output().expect("the parser's output");
    assert!(
        output.status.success(),
        "the {argument} parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("the parser's JSON"))
}

/// `name{key="value",...} value` or `name value`.
fn sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => return None,
    };
    let (labels, value) = match rest.strip_prefix('{') {
        Some(inner) => {
            let (labels, after) = label_set(inner)?;
            (labels, after)
        }
        None => (BTreeMap::new(), rest),
    };
    let value = value.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.into(),
        labels,
        value,
    })
}

/// The labels up to the closing `}`, and the text after it.
fn label_set(mut text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut characters = rest.char_indices();
        let end = loop {
            match characters.next()? {
                (at, '"') => break at,
                (_, '\\') => match characters.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.insert(key.trim().into(), value);
        text = &rest[end + 1..];
    }
}

#[test]
fn the_parser_reads_labels_escapes_and_special_values() {
    let scrape = Scrape::parse(
        "# HELP a_total A.\n# TYPE a counter\na_total{route=\"/v1/x\",why=\"say \\\"hi\\\"\"} 3\n\
         b_bucket{le=\"+Inf\"} 2\nc 1.5\n# EOF\n",
    );

    assert_eq!(scrape.value("a_total", &[("route", "/v1/x")]), 3.0);
    assert_eq!(scrape.samples[0].labels["why"], "say \"hi\"");
    assert_eq!(scrape.value("b_bucket", &[("le", "+Inf")]), 2.0);
    assert_eq!(scrape.value("c", &[]), 1.5);
    assert_eq!(scrape.value("a_total", &[("route", "/other")]), 0.0);
    assert!(scrape.series_names().contains("a_total"));
}
