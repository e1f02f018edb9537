//! A small hand-written writer for the Prometheus text format (0.0.4) and OpenMetrics
//! 1.0, used for the per-device families: at 100k devices prometheus-client's generic
//! encoder would mean a collector object and label-set encoding per sample, while this
//! copies label sets escaped once per device.
//!
//! The two formats differ only in family headers (OpenMetrics names a counter family
//! without `_total` and has an `info` type) and in the closing `# EOF`.

use std::io::Write as _;

use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// A constant 1 carrying slow-changing labels; a gauge in the Prometheus format.
    Info,
}

/// An exposition being written.
pub struct Writer {
    pub out: Vec<u8>,
    format: Format,
}

impl Writer {
    pub fn new(format: Format, capacity: usize) -> Self {
        Self {
            out: Vec::with_capacity(capacity),
            format,
        }
    }

    /// Starts a family; `sample` is the name its samples carry (`…_total` for a counter,
    /// `…_info` for an info).
    pub fn family(&mut self, sample: &str, help: &str, kind: Kind) {
        let om = self.format == Format::OpenMetrics;
        let (name, ty) = match kind {
            Kind::Counter if om => (sample.strip_suffix("_total").unwrap_or(sample), "counter"),
            Kind::Info if om => (sample.strip_suffix("_info").unwrap_or(sample), "info"),
            Kind::Counter => (sample, "counter"),
            Kind::Gauge | Kind::Info => (sample, "gauge"),
        };
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {ty}\n");
    }

    /// One sample; `labels` is an already escaped label list without braces.
    pub fn sample(&mut self, name: &str, labels: &[u8], value: impl Value) {
        self.out.extend_from_slice(name.as_bytes());
        if !labels.is_empty() {
            self.out.push(b'{');
            self.out.extend_from_slice(labels);
            self.out.push(b'}');
        }
        self.out.push(b' ');
        value.write(&mut self.out);
        self.out.push(b'\n');
    }

    /// Appends the families of a prometheus-client registry (which speaks OpenMetrics
    /// only), translated when the scrape asked for the Prometheus format.
    pub fn registry(&mut self, registry: &Registry) {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut text, registry).is_err() {
            tracing::error!("cannot encode the metrics registry");
            return;
        }
        match self.format {
            Format::OpenMetrics => self.out.extend_from_slice(text.as_bytes()),
            Format::Prometheus => to_prometheus(&text, &mut self.out),
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.format == Format::OpenMetrics {
            self.out.extend_from_slice(b"# EOF\n");
        }
        self.out
    }
}

/// A sample value.
pub trait Value {
    fn write(&self, out: &mut Vec<u8>);
}

impl Value for u64 {
    /// `itoa`: `write!` costs more than the digits at millions of samples.
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
    }
}

impl Value for f64 {
    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            v if v.is_nan() => out.extend_from_slice(b"NaN"),
            v if v == f64::INFINITY => out.extend_from_slice(b"+Inf"),
            v if v == f64::NEG_INFINITY => out.extend_from_slice(b"-Inf"),
            v => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

/// Appends `name="value"`, escaping the value as both formats require (`\`, `"`, LF),
/// preceded by a comma unless it is the `first` label of its set.
pub fn label(out: &mut Vec<u8>, first: bool, name: &str, value: &str) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
        return;
    }
    for chunk in value.split_inclusive(['\\', '"', '\n']) {
        let (text, last) = chunk.split_at(chunk.len() - 1);
        out.extend_from_slice(text.as_bytes());
        match last {
            "\\" => out.extend_from_slice(b"\\\\"),
            "\"" => out.extend_from_slice(b"\\\""),
            "\n" => out.extend_from_slice(b"\\n"),
            other => out.extend_from_slice(other.as_bytes()),
        }
    }
    out.push(b'"');
}

/// The metric label an inventory label key is written as (`isp.name` → `label_isp_name`):
/// the inventory's own rule, by which two keys that would collide are refused.
pub use crate::config::load::metric_label_name as label_name;

/// Translates prometheus-client's OpenMetrics output to the Prometheus text format:
/// counter and info families are renamed to their sample names, types Prometheus lacks
/// become `untyped`, and `# UNIT`, `# EOF` and exemplars are dropped.
fn to_prometheus(text: &str, out: &mut Vec<u8>) {
    let mut help: Option<(&str, &str)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (suffix, ty) = match ty {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "gauge"),
                "gauge" | "histogram" | "summary" => ("", ty),
                _ => ("", "untyped"),
            };
            if let Some((_, text)) = help.take().filter(|(n, _)| *n == name) {
                let _ = writeln!(out, "# HELP {name}{suffix} {text}");
            }
            let _ = writeln!(out, "# TYPE {name}{suffix} {ty}");
        } else if !line.starts_with('#') && !line.is_empty() {
            out.extend_from_slice(without_exemplar(line).as_bytes());
            out.push(b'\n');
        }
    }
}

/// The sample line without a trailing ` # {…} value` exemplar (a `#` inside a quoted
/// label value does not count).
fn without_exemplar(line: &str) -> &str {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in line.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'#' if !quoted => return line[..i].trim_end(),
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Vec::new();
        label(&mut out, true, "device", "a\"b\\c\nd");
        label(&mut out, false, "kind", "atm");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"device="a\"b\\c\nd",kind="atm""#
        );
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(label_name("isp.name-2"), "label_isp_name_2");
        assert_eq!(label_name("ок"), "label___");
    }

    #[test]
    fn families_are_named_per_format() {
        let mut w = Writer::new(Format::OpenMetrics, 0);
        w.family("x_total", "X.", Kind::Counter);
        w.family("y_info", "Y.", Kind::Info);
        assert_eq!(
            String::from_utf8(w.finish()).unwrap(),
            "# HELP x X.\n# TYPE x counter\n# HELP y Y.\n# TYPE y info\n# EOF\n"
        );
        let mut w = Writer::new(Format::Prometheus, 0);
        w.family("x_total", "X.", Kind::Counter);
        w.family("y_info", "Y.", Kind::Info);
        let text = String::from_utf8(w.finish()).unwrap();
        assert_eq!(
            text,
            "# HELP x_total X.\n# TYPE x_total counter\n# HELP y_info Y.\n# TYPE y_info gauge\n"
        );
    }

    #[test]
    fn openmetrics_registry_output_is_translated() {
        let om = "# HELP p Probes.\n# TYPE p counter\np_total 3 # {id=\"a#b\"} 1.0\n# TYPE u unknown\nu 1\n# EOF\n";
        let mut out = Vec::new();
        to_prometheus(om, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP p_total Probes.\n# TYPE p_total counter\np_total 3\n# TYPE u untyped\nu 1\n"
        );
    }

    #[test]
    fn values_use_the_exposition_spelling() {
        let mut out = Vec::new();
        for v in [f64::INFINITY, f64::NAN, 0.000_25] {
            v.write(&mut out);
            out.push(b' ');
        }
        for v in [0u64, 7, 1_800_000_000, u64::MAX] {
            v.write(&mut out);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+Inf NaN 0.00025 0 7 1800000000 18446744073709551615 "
        );
    }
}
