//! The figures of a [`Measurement`]: medians and p90s per target, the table the command prints
//! and the JSON it writes.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Measurement, Sample};

/// The median (the mean of the two middle values for an even count); `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let sorted = sorted(values);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The nearest-rank percentile `p` (0 < p ≤ 100): the smallest value with at least p % of the
/// values at or below it; `None` for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// A median and a p90.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The nearest-rank 90th percentile.
    pub p90: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Self> {
        Some(Self {
            median: median(values)?,
            p90: percentile(values, 90.0)?,
        })
    }

    fn json(spread: Option<Self>) -> Value {
        spread.map_or(Value::Null, |s| json!({ "median": s.median, "p90": s.p90 }))
    }
}

/// One target's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The target's label.
    pub label: String,
    /// Successful runs.
    pub runs: usize,
    /// Init, ms.
    pub init_ms: Option<Spread>,
    /// First invoke, ms.
    pub first_invoke_ms: Option<Spread>,
    /// Init plus first invoke of the same run, ms.
    pub cold_ms: Option<Spread>,
    /// Peak RSS at init, MiB.
    pub rss_at_init_mib: Option<Spread>,
    /// Peak RSS after the first invoke, MiB.
    pub rss_after_invoke_mib: Option<Spread>,
    /// The binary's size, bytes.
    pub size_bytes: Option<u64>,
    /// The init median divided by the baseline's.
    pub init_ratio: Option<f64>,
}

/// Every target's figures, the baseline's first.
pub fn summarise(measurement: &Measurement) -> Vec<Summary> {
    let figures =
        |samples: &[Sample], f: fn(&Sample) -> f64| -> Vec<f64> { samples.iter().map(f).collect() };
    let mut summaries: Vec<Summary> = measurement
        .results
        .iter()
        .map(|result| {
            let samples = result.samples.as_slice();
            Summary {
                label: result.target.label.clone(),
                runs: samples.len(),
                init_ms: Spread::of(&figures(samples, |s| ms(s.init))),
                first_invoke_ms: Spread::of(&figures(samples, |s| ms(s.first_invoke))),
                cold_ms: Spread::of(&figures(samples, |s| ms(s.init) + ms(s.first_invoke))),
                rss_at_init_mib: Spread::of(&figures(samples, |s| mib(s.rss_at_init_kib))),
                rss_after_invoke_mib: Spread::of(&figures(
                    samples,
                    |s| mib(s.rss_after_invoke_kib),
                )),
                size_bytes: result.size_bytes,
                init_ratio: None,
            }
        })
        .collect();
    let floor = summaries
        .first()
        .and_then(|s| s.init_ms)
        .map(|s| s.median)
        .filter(|m| *m > 0.0);
    for summary in &mut summaries {
        summary.init_ratio = floor.zip(summary.init_ms).map(|(f, s)| s.median / f);
    }
    summaries
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The table: one row per target, the baseline's first.
pub fn table(summaries: &[Summary]) -> String {
    let header = [
        "target",
        "runs",
        "init p50 ms",
        "init p90 ms",
        "invoke p50 ms",
        "invoke p90 ms",
        "init+invoke p50 ms",
        "RSS init MiB",
        "RSS invoke MiB",
        "size MiB",
        "init ×floor",
    ];
    let dash = || "–".to_owned();
    let number = |value: Option<f64>, decimals: usize| {
        value.map_or_else(dash, |v| format!("{v:.decimals$}"))
    };
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.label.clone(),
                s.runs.to_string(),
                number(s.init_ms.map(|x| x.median), 2),
                number(s.init_ms.map(|x| x.p90), 2),
                number(s.first_invoke_ms.map(|x| x.median), 2),
                number(s.first_invoke_ms.map(|x| x.p90), 2),
                number(s.cold_ms.map(|x| x.median), 2),
                number(s.rss_at_init_mib.map(|x| x.median), 1),
                number(s.rss_after_invoke_mib.map(|x| x.median), 1),
                number(s.size_bytes.map(|b| mib(b / 1024)), 2),
                s.init_ratio.map_or_else(dash, |r| format!("{r:.2}×")),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let _ = if i == 0 {
                write!(out, "{cell}{}", " ".repeat(pad))
            } else {
                write!(out, "  {}{cell}", " ".repeat(pad))
            };
        }
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    out
}

/// How much of the first run's response the JSON shows (enough to see it is not an error).
const RESPONSE_CHARS: usize = 400;

/// The JSON report: the figures, the first run's response and every run's figures.
pub fn json(measurement: &Measurement, summaries: &[Summary]) -> Value {
    let targets: Vec<Value> = measurement
        .results
        .iter()
        .zip(summaries)
        .enumerate()
        .map(|(i, (result, s))| {
            json!({
                "label": s.label,
                "function": result.target.function,
                "binary": result.target.binary.display().to_string(),
                "event": result.target.event.as_ref().map(|e| e.display().to_string()),
                "baseline": i == 0,
                "size_bytes": s.size_bytes,
                "runs_ok": s.runs,
                "init_ms": Spread::json(s.init_ms),
                "first_invoke_ms": Spread::json(s.first_invoke_ms),
                "init_plus_first_invoke_ms": Spread::json(s.cold_ms),
                "rss_at_init_mib": Spread::json(s.rss_at_init_mib),
                "rss_after_invoke_mib": Spread::json(s.rss_after_invoke_mib),
                "init_ratio_vs_baseline": s.init_ratio,
                "first_response": result.samples.first().map(|sample| {
                    let text = String::from_utf8_lossy(&sample.response);
                    text.chars().take(RESPONSE_CHARS).collect::<String>()
                }),
                "samples": result.samples.iter().map(|sample| json!({
                    "init_ms": ms(sample.init),
                    "first_invoke_ms": ms(sample.first_invoke),
                    "rss_at_init_kib": sample.rss_at_init_kib,
                    "rss_after_invoke_kib": sample.rss_after_invoke_kib,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let failures: Vec<Value> = measurement
        .failures
        .iter()
        .map(|f| {
            json!({
                "label": f.label,
                "run": f.run,
                "reason": f.failure.reason,
                "output": f.failure.output,
            })
        })
        .collect();
    json!({
        "runs_planned": measurement.runs,
        "interleaved": true,
        "targets": targets,
        "failures": failures,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::coldstart::{Failure, RunFailure, Target, TargetResult};

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&hundred, 90.0), Some(90.0));
        assert_eq!(percentile(&hundred, 100.0), Some(100.0));
        let twenty_one: Vec<f64> = (1..=21).map(f64::from).collect();
        // ceil(0.9 × 21) = 19th smallest.
        assert_eq!(percentile(&twenty_one, 90.0), Some(19.0));
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
        assert_eq!(percentile(&[], 90.0), None);
    }

    fn sample(init_ms: u64, invoke_ms: u64, rss_kib: u64) -> Sample {
        Sample {
            init: Duration::from_millis(init_ms),
            first_invoke: Duration::from_millis(invoke_ms),
            rss_at_init_kib: rss_kib,
            rss_after_invoke_kib: rss_kib + 1024,
            response: bytes::Bytes::new(),
        }
    }

    fn result(label: &str, samples: Vec<Sample>) -> TargetResult {
        TargetResult {
            target: Target {
                label: label.to_owned(),
                function: label.to_owned(),
                binary: format!("/bin/{label}").into(),
                event: None,
                env: vec![],
            },
            size_bytes: Some(3 * 1024 * 1024),
            samples,
        }
    }

    #[test]
    fn summaries_divide_by_the_baselines_init_and_the_table_and_json_show_them() {
        let measurement = Measurement {
            runs: 3,
            results: vec![
                result(
                    "hello",
                    vec![sample(2, 1, 2048), sample(4, 1, 2048), sample(3, 1, 2048)],
                ),
                result(
                    "order-api",
                    vec![sample(9, 20, 11264), sample(6, 30, 11264)],
                ),
                result("broken", vec![]),
            ],
            failures: vec![RunFailure {
                label: "broken".into(),
                run: 1,
                failure: Failure {
                    reason: "init error".into(),
                    output: vec!["boom".into()],
                },
            }],
        };
        let summaries = summarise(&measurement);
        assert_eq!(summaries[0].init_ratio, Some(1.0));
        assert_eq!(
            summaries[1].init_ms,
            Some(Spread {
                median: 7.5,
                p90: 9.0
            })
        );
        assert_eq!(summaries[1].init_ratio, Some(2.5));
        assert_eq!(summaries[1].cold_ms.map(|s| s.median), Some(32.5));
        assert_eq!(summaries[1].rss_at_init_mib.map(|s| s.median), Some(11.0));
        assert_eq!(
            summaries[1].rss_after_invoke_mib.map(|s| s.median),
            Some(12.0)
        );
        assert_eq!((summaries[2].runs, summaries[2].init_ratio), (0, None));

        let table = table(&summaries);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("target "), "{table}");
        assert!(
            lines[1].starts_with("hello ") && lines[1].ends_with("1.00×"),
            "{table}"
        );
        assert!(
            lines[2].contains("7.50") && lines[2].ends_with("2.50×"),
            "{table}"
        );
        assert!(
            lines[2].contains("11.0") && lines[2].contains("3.00"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("broken ") && lines[3].ends_with('–'),
            "{table}"
        );
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "aligned: {table}");

        let json = json(&measurement, &summaries);
        assert_eq!(json["targets"][1]["init_ms"]["median"], 7.5);
        assert_eq!(json["targets"][1]["init_ratio_vs_baseline"], 2.5);
        assert_eq!(json["targets"][0]["baseline"], true);
        assert_eq!(json["targets"][1]["samples"][1]["first_invoke_ms"], 30.0);
        assert_eq!(json["targets"][2]["init_ms"], Value::Null);
        assert_eq!(json["failures"][0]["reason"], "init error");
    }
}
