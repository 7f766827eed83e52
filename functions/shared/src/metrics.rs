//! CloudWatch metrics in the embedded metric format (EMF).
//!
//! A function collects counters and values in a [`Metrics`] builder while it
//! works, then flushes it once (per request, per event): JSON lines on stdout
//! that CloudWatch Logs turns into metrics in the namespace [`NAMESPACE`], no
//! agent and no API call needed:
//!
//! ```json
//! {"_aws": {"Timestamp": 1764629700000, "CloudWatchMetrics": [
//!    {"Namespace": "OortOktaLockout", "Dimensions": [["Function", "Answer", "Reason"]],
//!     "Metrics": [{"Name": "Requests", "Unit": "Count"}]}]},
//!  "Function": "oort-okta-lockout-ingest", "Answer": "rejected", "Reason": "auth", "Requests": 1}
//! ```
//!
//! Every metric has the dimension `Function` (the Lambda function's name,
//! `AWS_LAMBDA_FUNCTION_NAME`) plus its own. Dimension values must come from
//! small closed sets (an answer, a reason class, an event kind, a plan, an
//! outcome word): every distinct value is a billed custom metric, so an id
//! (event, user, request) is never a dimension.
//!
//! One line carries everything that fits together: one directive per
//! dimension set (at most [`MAX_METRICS_PER_DIRECTIVE`] metrics each), the
//! dimension values and metric values as top-level members. A dimension has
//! one value per line, so metrics that need another value of the same
//! dimension (`Users` for `Outcome=suspended` and for `Outcome=failed`) go on
//! a further line of the same flush. The format is checked by [`validate`].

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "OortOktaLockout";
/// The dimension every metric carries: the function's name.
pub const FUNCTION: &str = "Function";
/// EMF's limit of metrics in one directive.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
/// EMF's limit of keys in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// EMF's limit of values of one metric in one line.
const MAX_VALUES: usize = 100;

/// The CloudWatch unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric under one set of dimension values.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    name: &'static str,
    unit: Unit,
    /// The metric's own dimensions (besides `Function`), sorted by name.
    dimensions: Vec<(&'static str, String)>,
    values: Vec<f64>,
}

/// Counters and values collected for one flush.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    function: String,
    entries: Vec<Entry>,
}

impl Metrics {
    /// An empty builder for the function named `function`.
    pub fn new(function: impl Into<String>) -> Metrics {
        Metrics {
            function: function.into(),
            entries: Vec::new(),
        }
    }

    /// Adds `n` to the counter `name` (unit Count) under `dimensions`.
    pub fn count(&mut self, name: &'static str, n: u64, dimensions: &[(&'static str, &str)]) {
        let dimensions = sorted(dimensions);
        match self
            .entries
            .iter_mut()
            .find(|e| e.name == name && e.unit == Unit::Count && e.dimensions == dimensions)
        {
            Some(entry) => entry.values[0] += n as f64,
            None => self.entries.push(Entry {
                name,
                unit: Unit::Count,
                dimensions,
                values: vec![n as f64],
            }),
        }
    }

    /// Records one value of `name` under `dimensions` (several values of one
    /// metric in a flush are kept apart, for CloudWatch's statistics).
    /// Values that are not finite are dropped.
    pub fn value(
        &mut self,
        name: &'static str,
        unit: Unit,
        value: f64,
        dimensions: &[(&'static str, &str)],
    ) {
        if !value.is_finite() {
            return;
        }
        let dimensions = sorted(dimensions);
        match self.entries.iter_mut().find(|e| {
            e.name == name
                && e.unit == unit
                && e.dimensions == dimensions
                && e.values.len() < MAX_VALUES
        }) {
            Some(entry) => entry.values.push(value),
            None => self.entries.push(Entry {
                name,
                unit,
                dimensions,
                values: vec![value],
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The EMF lines for what was collected, stamped `timestamp_ms` (epoch
    /// milliseconds): one line, plus one more for each further value of a
    /// dimension (or each repeated metric name) that cannot share it.
    pub fn lines(&self, timestamp_ms: u64) -> Vec<String> {
        // Each line: its dimension values and its entries, packed first-fit.
        let mut lines: Vec<(BTreeMap<&str, &str>, Vec<&Entry>)> = Vec::new();
        for entry in &self.entries {
            let fits = |(dims, entries): &(BTreeMap<&str, &str>, Vec<&Entry>)| {
                entry
                    .dimensions
                    .iter()
                    .all(|(k, v)| dims.get(k).is_none_or(|have| *have == v.as_str()))
                    && !entries.iter().any(|e| e.name == entry.name)
                    && !dims.contains_key(entry.name)
                    && !entries
                        .iter()
                        .any(|e| entry.dimensions.iter().any(|(k, _)| *k == e.name))
            };
            let index = match lines.iter().position(fits) {
                Some(i) => i,
                None => {
                    lines.push((BTreeMap::new(), Vec::new()));
                    lines.len() - 1
                }
            };
            let (dims, entries) = &mut lines[index];
            for (k, v) in &entry.dimensions {
                dims.insert(k, v);
            }
            entries.push(entry);
        }
        lines
            .iter()
            .map(|(dims, entries)| self.line(timestamp_ms, dims, entries))
            .collect()
    }

    fn line(&self, timestamp_ms: u64, dims: &BTreeMap<&str, &str>, entries: &[&Entry]) -> String {
        // One directive per dimension set, in the order first seen.
        let mut directives: Vec<(Vec<&str>, Vec<Value>)> = Vec::new();
        for entry in entries {
            let mut set = vec![FUNCTION];
            set.extend(entry.dimensions.iter().map(|(k, _)| *k));
            let metric = json!({"Name": entry.name, "Unit": entry.unit.as_str()});
            match directives
                .iter_mut()
                .find(|(s, m)| *s == set && m.len() < MAX_METRICS_PER_DIRECTIVE)
            {
                Some((_, metrics)) => metrics.push(metric),
                None => directives.push((set, vec![metric])),
            }
        }
        let directives: Vec<Value> = directives
            .into_iter()
            .map(|(set, metrics)| {
                json!({"Namespace": NAMESPACE, "Dimensions": [set], "Metrics": metrics})
            })
            .collect();
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
        );
        line.insert(FUNCTION.into(), Value::String(self.function.clone()));
        for (k, v) in dims {
            line.insert((*k).into(), Value::String((*v).into()));
        }
        for entry in entries {
            let value = match entry.values.as_slice() {
                [one] => number(*one),
                many => Value::Array(many.iter().map(|v| number(*v)).collect()),
            };
            line.insert(entry.name.into(), value);
        }
        Value::Object(line).to_string()
    }

    /// Writes the lines (stamped now) to `out`, each with its newline in one
    /// write, and empties the builder. Nothing is written when it is empty.
    pub fn flush(&mut self, out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for line in self.lines(now_ms()) {
            text.push_str(&line);
            text.push('\n');
        }
        self.entries.clear();
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

/// Where a function's metrics go: stdout in production, a buffer in tests
/// (the same lines either way). Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    function: Arc<str>,
    out: Arc<Mutex<dyn Write + Send>>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// Metrics on stdout, for the function named by `AWS_LAMBDA_FUNCTION_NAME`
    /// (`fallback` when it is not set).
    pub fn stdout(fallback: &str) -> Emitter {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| fallback.to_string());
        Emitter::new(function, std::io::stdout())
    }

    /// Metrics for `function`, written to `out`.
    pub fn new(function: impl Into<String>, out: impl Write + Send + 'static) -> Emitter {
        Emitter {
            function: Arc::from(function.into()),
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// The value of the `Function` dimension.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// An empty builder for this function.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(self.function.to_string())
    }

    /// Flushes `metrics`. A write that fails is logged, never an error for
    /// the caller: metrics must not fail a request or an event.
    pub fn emit(&self, mut metrics: Metrics) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = metrics.flush(&mut *out) {
            tracing::warn!(error = %e, "could not write the metrics line");
        }
    }
}

/// A buffer to pass to [`Emitter::new`] in tests: what production would
/// have printed, line by line.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Every line, parsed (a line that is not JSON is `Value::Null`).
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks that `line` is valid EMF in [`NAMESPACE`]: `_aws` with a numeric
/// `Timestamp` and a non-empty `CloudWatchMetrics`, each directive with the
/// namespace, dimension sets of 1 to 30 names (each present at the top level
/// as a non-empty string) and 1 to 100 metrics (each named once, with a
/// known unit, present at the top level as a number or up to 100 numbers).
pub fn validate(line: &Value) -> Result<(), String> {
    let top = line.as_object().ok_or("the line is not a JSON object")?;
    let aws = top
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no `_aws` object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Err("`_aws.Timestamp` is not epoch milliseconds".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("`_aws.CloudWatchMetrics` is not a non-empty array")?;
    for directive in directives {
        if directive.get("Namespace").and_then(Value::as_str) != Some(NAMESPACE) {
            return Err(format!("a directive's namespace is not {NAMESPACE}"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("a directive has no `Dimensions` array")?;
        for set in sets {
            let set = set
                .as_array()
                .filter(|s| (1..=MAX_DIMENSIONS).contains(&s.len()))
                .ok_or("a dimension set is not an array of 1 to 30 names")?;
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                match top.get(name).and_then(Value::as_str) {
                    Some(v) if !v.trim().is_empty() && v.len() <= 1024 => {}
                    _ => return Err(format!("dimension {name} is not a string at the top level")),
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .filter(|m| (1..=MAX_METRICS_PER_DIRECTIVE).contains(&m.len()))
            .ok_or("a directive's `Metrics` is not an array of 1 to 100 metrics")?;
        let mut names = Vec::new();
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has no name")?;
            if names.contains(&name) {
                return Err(format!("metric {name} is named twice in a directive"));
            }
            names.push(name);
            if !matches!(
                metric.get("Unit").and_then(Value::as_str),
                Some("Count" | "Seconds" | "Milliseconds")
            ) {
                return Err(format!("metric {name} has no known unit"));
            }
            let ok = match top.get(name) {
                Some(Value::Number(_)) => true,
                Some(Value::Array(values)) => {
                    (1..=MAX_VALUES).contains(&values.len()) && values.iter().all(Value::is_number)
                }
                _ => false,
            };
            if !ok {
                return Err(format!("metric {name} is not a number at the top level"));
            }
        }
    }
    Ok(())
}

/// The metric value `name` of an EMF line whose top-level members include
/// `dimensions` (as the tests look a metric up).
pub fn find<'l>(lines: &'l [Value], name: &str, dimensions: &[(&str, &str)]) -> Option<&'l Value> {
    lines
        .iter()
        .filter(|l| l.get("_aws").is_some())
        .filter(|l| {
            dimensions
                .iter()
                .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .find_map(|l| l.get(name))
}

/// The dimension set (`Function` first) under which `line` declares `name`.
pub fn dimension_set(line: &Value, name: &str) -> Option<Vec<String>> {
    line["_aws"]["CloudWatchMetrics"]
        .as_array()?
        .iter()
        .find(|d| {
            d["Metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["Name"] == name))
        })
        .and_then(|d| d["Dimensions"][0].as_array())
        .map(|set| {
            set.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
}

/// Seconds from `rfc3339` (an event's `time`) to `now`, when it parses and
/// is not in the future.
pub fn seconds_since(rfc3339: &str, now: SystemTime) -> Option<f64> {
    let then = time::OffsetDateTime::parse(
        rfc3339.trim(),
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    let now = time::OffsetDateTime::from(now);
    let elapsed = (now - then).as_seconds_f64();
    (elapsed >= 0.0).then_some(elapsed)
}

fn sorted(dimensions: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    debug_assert!(
        dimensions.len() < MAX_DIMENSIONS,
        "at most 29 dimensions besides Function"
    );
    debug_assert!(
        dimensions.iter().all(|(k, _)| *k != FUNCTION),
        "Function is added to every metric"
    );
    let mut dims: Vec<(&'static str, String)> = dimensions
        .iter()
        .take(MAX_DIMENSIONS - 1)
        .filter(|(k, _)| *k != FUNCTION)
        .map(|(k, v)| (*k, dimension_value(v)))
        .collect();
    dims.sort_by_key(|(k, _)| *k);
    dims.dedup_by_key(|(k, _)| *k);
    dims
}

/// CloudWatch refuses empty or whitespace-only dimension values.
fn dimension_value(v: &str) -> String {
    if v.trim().is_empty() {
        "none".into()
    } else {
        v.chars().take(1024).collect()
    }
}

/// Whole numbers print as integers (`3`, not `3.0`).
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(metrics: &Metrics) -> Vec<Value> {
        let lines: Vec<Value> = metrics
            .lines(1_764_629_700_000)
            .iter()
            .map(|l| serde_json::from_str(l).expect("a line is JSON"))
            .collect();
        for line in &lines {
            validate(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        lines
    }

    #[test]
    fn a_counter_is_one_line_in_the_documented_shape() {
        let mut m = Metrics::new("ingest");
        m.count("Requests", 1, &[("Answer", "rejected"), ("Reason", "auth")]);
        let lines = parsed(&m);
        assert_eq!(
            lines,
            [json!({
                "_aws": {"Timestamp": 1_764_629_700_000u64, "CloudWatchMetrics": [{
                    "Namespace": "OortOktaLockout",
                    "Dimensions": [["Function", "Answer", "Reason"]],
                    "Metrics": [{"Name": "Requests", "Unit": "Count"}]
                }]},
                "Function": "ingest", "Answer": "rejected", "Reason": "auth", "Requests": 1
            })]
        );
    }

    #[test]
    fn counters_add_up_and_compatible_metrics_share_a_line() {
        let mut m = Metrics::new("dispatcher");
        m.count("Events", 1, &[("Kind", "FAILED_CHECK"), ("Plan", "acted")]);
        m.count("Users", 2, &[("Outcome", "suspended")]);
        m.count("Users", 1, &[("Outcome", "suspended")]);
        m.count("Users", 1, &[("Outcome", "failed")]);
        m.count("OktaRetries", 3, &[]);
        m.count("OktaRateLimited", 0, &[]);
        m.value("EventToSummarySeconds", Unit::Seconds, 12.5, &[]);
        let lines = parsed(&m);
        assert_eq!(lines.len(), 2, "Outcome has two values: {lines:#?}");
        let first = &lines[0];
        assert_eq!(first["Events"], 1);
        assert_eq!(first["Users"], 3);
        assert_eq!(first["Outcome"], "suspended");
        assert_eq!(first["OktaRetries"], 3);
        assert_eq!(first["OktaRateLimited"], 0);
        assert_eq!(first["EventToSummarySeconds"], 12.5);
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Kind", "Plan"]])
        );
        assert_eq!(
            dimension_set(first, "OktaRetries").unwrap(),
            ["Function"],
            "metrics without their own dimensions share one directive"
        );
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(),
            3
        );
        assert_eq!(lines[1]["Users"], 1);
        assert_eq!(lines[1]["Outcome"], "failed");
        assert_eq!(
            dimension_set(&lines[1], "Users").unwrap(),
            ["Function", "Outcome"]
        );
        assert_eq!(
            find(&lines, "Users", &[("Outcome", "failed")]),
            Some(&json!(1))
        );
        assert_eq!(find(&lines, "Users", &[("Outcome", "held")]), None);
    }

    #[test]
    fn several_values_of_one_metric_are_an_array() {
        let mut m = Metrics::new("f");
        m.value("Latency", Unit::Milliseconds, 1.0, &[]);
        m.value("Latency", Unit::Milliseconds, 2.5, &[]);
        m.value("Latency", Unit::Milliseconds, f64::NAN, &[]);
        assert_eq!(parsed(&m)[0]["Latency"], json!([1, 2.5]));
    }

    #[test]
    fn limits_of_the_format_are_kept() {
        let names: Vec<&'static str> = (0..150)
            .map(|i| &*Box::leak(format!("M{i}").into_boxed_str()))
            .collect();
        let mut m = Metrics::new("f");
        for name in &names {
            m.count(name, 1, &[("Kind", "x")]);
        }
        let lines = parsed(&m);
        assert_eq!(lines.len(), 1);
        let directives = lines[0]["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2, "100 metrics per directive");
        assert_eq!(directives[0]["Metrics"].as_array().unwrap().len(), 100);
        // A blank dimension value would be refused by CloudWatch.
        let mut m = Metrics::new("f");
        m.count("Users", 1, &[("Outcome", " ")]);
        assert_eq!(parsed(&m)[0]["Outcome"], "none");
    }

    #[test]
    fn seconds_since_an_rfc_3339_time() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_764_629_700);
        assert_eq!(seconds_since("2025-12-01T22:55:00Z", now), Some(0.0));
        assert_eq!(seconds_since("2025-12-01T22:54:00Z", now), Some(60.0));
        assert_eq!(seconds_since("2025-12-01T23:54:00+01:00", now), Some(60.0));
        assert_eq!(seconds_since("2025-12-01T22:54:59.5Z", now), Some(0.5));
        assert_eq!(
            seconds_since("2025-12-01T22:56:00Z", now),
            None,
            "in the future"
        );
        assert_eq!(seconds_since("yesterday", now), None);
    }

    #[test]
    fn the_validator_refuses_what_cloudwatch_would() {
        let good = json!({
            "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
                "Namespace": "OortOktaLockout", "Dimensions": [["Function"]],
                "Metrics": [{"Name": "Events", "Unit": "Count"}]}]},
            "Function": "dispatcher", "Events": 1
        });
        assert_eq!(validate(&good), Ok(()));
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut line = good.clone();
            edit(&mut line);
            validate(&line).expect_err(&line.to_string())
        };
        broken(&|l| l["Events"] = json!("1"));
        broken(&|l| {
            l.as_object_mut().unwrap().remove("Function");
        });
        broken(&|l| l["Function"] = json!(3));
        broken(&|l| l["_aws"]["Timestamp"] = json!("now"));
        broken(&|l| l["_aws"]["CloudWatchMetrics"] = json!([]));
        broken(&|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("Other"));
        broken(&|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Bogus"));
        broken(&|l| l["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([[]]));
        assert!(validate(&json!("text")).is_err());
    }

    #[test]
    fn an_emitter_writes_one_flush_as_whole_lines_and_nothing_when_empty() {
        let captured = Captured::default();
        let emitter = Emitter::new("ingest", captured.clone());
        emitter.emit(emitter.metrics());
        assert_eq!(captured.text(), "");
        let mut m = emitter.metrics();
        m.count("Requests", 1, &[("Answer", "queued")]);
        emitter.emit(m);
        let text = captured.text();
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        let lines = captured.lines();
        validate(&lines[0]).unwrap();
        assert_eq!(lines[0]["Function"], "ingest");
        let ts = lines[0]["_aws"]["Timestamp"].as_u64().unwrap();
        assert!(ts > 1_700_000_000_000, "epoch milliseconds: {ts}");
    }
}
