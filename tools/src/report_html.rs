//! A run's figures as one self-contained HTML page, with charts: what
//! `orderflow load --report FILE` and `orderflow soak --report FILE` write beside the figures they
//! print.
//!
//! The page holds the settings, the date, the figures the command prints in a table, and two
//! charts drawn by `plotters` as inline SVG: the latency distribution (the share of samples at or
//! below each latency, on a logarithmic axis, with p50, p90 and p99 marked and listed) and the
//! throughput over time (completions per second in buckets of [`bucket_width`]). Nothing is loaded
//! from elsewhere: no script, stylesheet, font or image, so the file can be mailed or archived and
//! still reads the same. The markup is written with `maud`, which escapes every value it is given;
//! only the SVG that `plotters` drew (which escapes its own text) goes in as it is.
//!
//! [`render`] is pure (the figures in, the page out); [`write`] puts a page in a file.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::load::{Summary, figure};

/// A chart's size in pixels.
const CHART_SIZE: (u32, u32) = (900, 420);
/// The most points a latency curve is drawn with (more samples are thinned to evenly spaced ranks).
const CURVE_POINTS: usize = 400;
/// The most buckets a throughput chart has: longer runs get wider buckets.
const MAX_BUCKETS: u64 = 120;
/// The bucket widths to choose from, in seconds: the first that keeps a run within [`MAX_BUCKETS`].
const BUCKET_SECONDS: &[u64] = &[1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
/// The percentiles marked on the latency chart.
const MARKED: [u32; 3] = [50, 90, 99];
/// The series' colours, in turn (distinct for the colour-blind too).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];
/// The page's look; inline, like everything else.
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{text-align:left;padding:0.2em 0.8em;border-bottom:1px solid #ddd;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:0.5em 0 1.5em}figcaption{color:#555;font-size:0.9em}";

/// Named samples: latencies, or when each completion happened, from the run's start.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// What the samples are (the chart's legend).
    pub name: &'a str,
    /// The samples, in any order.
    pub samples: &'a [Duration],
}

/// Everything a report page shows.
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    /// The command (`orderflow load`); the page's title and heading.
    pub title: &'a str,
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// The settings it ran with, by name.
    pub settings: Vec<(String, String)>,
    /// The figures the command prints, by name.
    pub figures: Vec<(String, String)>,
    /// Latencies: one curve each on the latency chart.
    pub latencies: Vec<Series<'a>>,
    /// Completion times from the run's start: one line each on the throughput chart.
    pub completions: Vec<Series<'a>>,
}

/// The page as self-contained HTML.
pub fn render(page: &Page<'_>) -> Result<String> {
    let latency = latency_chart(&page.latencies)?;
    let (throughput, width) = throughput_chart(&page.completions)?;
    let date = page.started_at.map_or_else(
        || "-".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let summaries: Vec<(&str, Option<Summary>)> = page
        .latencies
        .iter()
        .map(|series| (series.name, Summary::of(series.samples)))
        .collect();
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (page.title) " — " (date) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (page.title) }
                p { "Run started " (date) "." }
                h2 { "Settings" }
                (table(&page.settings))
                h2 { "Figures" }
                (table(&page.figures))
                h2 { "Latency distribution" }
                table {
                    tr {
                        th { "latency" } th { "n" } th { "p50" } th { "p90" } th { "p99" }
                        th { "max" }
                    }
                    @for (name, summary) in &summaries {
                        tr {
                            th { (name) }
                            @if let Some(s) = summary {
                                td.n { (s.count) }
                                td.n { (figure(s.p50)) }
                                td.n { (figure(s.p90)) }
                                td.n { (figure(s.p99)) }
                                td.n { (figure(s.max)) }
                            } @else {
                                td.n { "0" } td.n { "-" } td.n { "-" } td.n { "-" } td.n { "-" }
                            }
                        }
                    }
                }
                @match latency {
                    Some(svg) => figure {
                        (PreEscaped(svg))
                        figcaption {
                            "The share of samples at or below each latency (logarithmic axis); "
                            "the dots mark p50, p90 and p99 (nearest rank)."
                        }
                    },
                    None => p { "No latency was measured: nothing to draw." },
                }
                h2 { "Throughput over time" }
                @match throughput {
                    Some(svg) => figure {
                        (PreEscaped(svg))
                        figcaption {
                            "Completions per second from the run's start, counted in "
                            (width.as_secs()) " s buckets "
                            "(the last one may be cut short by the run's end)."
                        }
                    },
                    None => p { "Nothing completed: nothing to draw." },
                }
            }
        }
    };
    Ok(markup.into_string())
}

/// Writes `html` to `path`, creating its folder if needed.
pub fn write(path: &Path, html: &str) -> Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))
}

/// A two-column table: name, value.
fn table(rows: &[(String, String)]) -> Markup {
    html! {
        table {
            @for (name, value) in rows {
                tr { th { (name) } td { (value) } }
            }
        }
    }
}

/// The throughput chart's bucket width for a run of `span`: 1 s, or the narrowest of
/// [`BUCKET_SECONDS`] that keeps the chart within [`MAX_BUCKETS`] buckets.
pub fn bucket_width(span: Duration) -> Duration {
    let seconds = span.as_secs_f64();
    let width = BUCKET_SECONDS
        .iter()
        .copied()
        .find(|&w| seconds / w as f64 <= MAX_BUCKETS as f64)
        .unwrap_or(3600);
    Duration::from_secs(width)
}

/// How many of `offsets` fall into each bucket of `width` from 0: bucket `i` counts the offsets in
/// `[i·width, (i+1)·width)`. As many buckets as reach the latest offset; none without offsets.
pub fn buckets(offsets: &[Duration], width: Duration) -> Vec<usize> {
    let width = width.as_nanos().max(1);
    let index =
        |offset: &Duration| usize::try_from(offset.as_nanos() / width).unwrap_or(usize::MAX);
    let Some(last) = offsets.iter().map(index).max() else {
        return Vec::new();
    };
    let mut counts = vec![0; last.saturating_add(1)];
    for offset in offsets {
        if let Some(count) = counts.get_mut(index(offset)) {
            *count += 1;
        }
    }
    counts
}

/// The `n`-th series' colour.
fn colour(n: usize) -> RGBColor {
    COLOURS[n % COLOURS.len()]
}

/// Milliseconds, as plotted.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// An axis label for `ms` milliseconds.
fn millis_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// The cumulative distribution of `sorted` (ascending) as (milliseconds, percent at or below),
/// thinned to at most [`CURVE_POINTS`] points at evenly spaced ranks (the last sample included).
fn distribution(sorted: &[Duration]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    let points = n.min(CURVE_POINTS);
    (1..=points)
        .map(|k| {
            let rank = (k * n).div_ceil(points);
            let at = sorted[rank - 1];
            (millis(at), 100.0 * rank as f64 / n as f64)
        })
        .collect()
}

/// A chart drawn into SVG: `draw` gets a white area of [`CHART_SIZE`].
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// A chart on `root` captioned `caption`, with room for the axes' labels.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(56);
    builder
}

/// Draws the `n`-th series, `name`, as a line through `points`, with its entry in the legend.
fn line<CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, CT>,
    n: usize,
    name: &str,
    points: impl IntoIterator<Item = (f64, f64)>,
) -> Result<()> {
    let style = colour(n).stroke_width(2);
    chart
        .draw_series(LineSeries::new(points, style))?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    Ok(())
}

/// Draws the legend at `position`.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// The latency chart: one cumulative curve per series, p50/p90/p99 marked; `None` without samples.
fn latency_chart(series: &[Series<'_>]) -> Result<Option<String>> {
    let sorted: Vec<(&str, Vec<Duration>)> = series
        .iter()
        .filter(|s| !s.samples.is_empty())
        .map(|s| {
            let mut samples = s.samples.to_vec();
            samples.sort_unstable();
            (s.name, samples)
        })
        .collect();
    let all = || sorted.iter().flat_map(|(_, s)| s.iter().copied());
    let (Some(least), Some(most)) = (all().min(), all().max()) else {
        return Ok(None);
    };
    // A logarithmic axis: from a little below the least sample (0.1 ms at least) to far enough
    // above the most for the percentiles' labels.
    let low = (millis(least) * 0.8).max(0.1);
    let high = (millis(most) * 1.6).max(low * 10.0);
    let chart = svg(|root| {
        let mut chart = frame(root, "Latency distribution")
            .build_cartesian_2d((low..high).log_scale(), 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_desc("latency (logarithmic)")
            .y_desc("% of samples at or below")
            .x_label_formatter(&|ms| millis_label(*ms))
            .y_label_formatter(&|percent| format!("{percent:.0}"))
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        for percent in MARKED {
            let level = f64::from(percent);
            chart.draw_series(LineSeries::new(
                [(low, level), (high, level)],
                BLACK.mix(0.25),
            ))?;
            // At the right end, above its line: past the slowest series' p99.
            let label = ("sans-serif", 12)
                .into_font()
                .color(&BLACK.mix(0.6))
                .pos(Pos::new(HPos::Right, VPos::Bottom));
            chart.draw_series([Text::new(format!("p{percent}"), (high, level), label)])?;
        }
        for (n, (name, samples)) in sorted.iter().enumerate() {
            line(&mut chart, n, name, distribution(samples))?;
            let marks = MARKED.into_iter().filter_map(|percent| {
                let at = crate::load::percentile(samples, percent)?;
                Some((millis(at), f64::from(percent)))
            });
            chart.draw_series(marks.map(|point| Circle::new(point, 4, colour(n).filled())))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })?;
    Ok(Some(chart))
}

/// The throughput chart: completions per second over time, one step line per series, and the
/// bucket width; `None` when nothing completed.
fn throughput_chart(series: &[Series<'_>]) -> Result<(Option<String>, Duration)> {
    let span = series
        .iter()
        .flat_map(|s| s.samples.iter().copied())
        .max()
        .unwrap_or_default();
    let width = bucket_width(span);
    let counted: Vec<(&str, Vec<usize>)> = series
        .iter()
        .filter(|s| !s.samples.is_empty())
        .map(|s| (s.name, buckets(s.samples, width)))
        .collect();
    let Some(longest) = counted.iter().map(|(_, counts)| counts.len()).max() else {
        return Ok((None, width));
    };
    let seconds = width.as_secs_f64();
    let end = longest as f64 * seconds;
    let most = counted
        .iter()
        .flat_map(|(_, counts)| counts.iter().copied())
        .max()
        .unwrap_or(0);
    // Headroom for the legend.
    let top = (most as f64 / seconds * 1.35).max(1.0);
    let chart = svg(|root| {
        let mut chart =
            frame(root, "Throughput over time").build_cartesian_2d(0.0..end, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds from the run's start")
            .y_desc("per second")
            .x_label_formatter(&|at| format!("{at:.0}"))
            .y_label_formatter(&|rate| {
                if top >= 10.0 {
                    format!("{rate:.0}")
                } else {
                    format!("{rate:.1}")
                }
            })
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        for (n, (name, counts)) in counted.iter().enumerate() {
            // A step per bucket: its rate held from its start to its end.
            let steps = counts.iter().enumerate().flat_map(|(i, &count)| {
                let rate = count as f64 / seconds;
                [(i as f64 * seconds, rate), ((i + 1) as f64 * seconds, rate)]
            });
            line(&mut chart, n, name, steps)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })?;
    Ok((Some(chart), width))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn completions_are_counted_in_the_bucket_they_fall_in() {
        let offsets = ms([0, 999, 1000, 1500, 3999, 4000, 250]);
        assert_eq!(buckets(&offsets, Duration::from_secs(1)), [3, 2, 0, 1, 1]);
        assert_eq!(buckets(&offsets, Duration::from_secs(2)), [5, 1, 1]);
        assert_eq!(
            buckets(&offsets, Duration::from_secs(1))
                .iter()
                .sum::<usize>(),
            offsets.len()
        );
        assert!(buckets(&[], Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn long_runs_get_wider_buckets() {
        let width = |seconds| bucket_width(Duration::from_secs(seconds)).as_secs();
        assert_eq!(
            (width(0), width(120), width(121), width(600), width(601)),
            (1, 1, 2, 5, 10)
        );
        assert_eq!((width(3_600), width(86_400)), (30, 900));
        // No more than 120 buckets, however long the run.
        let day = Duration::from_secs(86_400);
        assert!(buckets(&[day], bucket_width(day)).len() <= 121);
    }

    #[test]
    fn the_curve_ends_at_the_largest_sample_and_is_thinned() {
        let sorted = ms(1..=1000);
        let curve = distribution(&sorted);
        assert_eq!(curve.len(), CURVE_POINTS);
        assert_eq!(curve.last(), Some(&(1000.0, 100.0)));
        assert_eq!(curve.first(), Some(&(3.0, 0.3)));
        assert!(
            curve
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1)
        );
        assert_eq!(distribution(&ms([5, 7])), [(5.0, 50.0), (7.0, 100.0)]);
    }

    #[test]
    fn a_page_draws_both_charts_and_escapes_what_it_is_given() {
        let posts = ms((1..=100).map(|n| n * 2));
        let end_to_end = ms((1..=100).map(|n| 1000 + n * 10));
        let done = ms((0..100).map(|n| n * 50));
        let page = Page {
            title: "orderflow <load>",
            figures: vec![("note".into(), "a & b <script>alert(1)</script>".into())],
            latencies: vec![
                Series {
                    name: "POST",
                    samples: &posts,
                },
                Series {
                    name: "end to end",
                    samples: &end_to_end,
                },
            ],
            completions: vec![Series {
                name: "scheduled",
                samples: &done,
            }],
            ..Page::default()
        };
        let html = render(&page).unwrap();
        assert_eq!(html.matches("<svg").count(), 2, "two charts");
        assert!(html.contains("orderflow &lt;load&gt;"));
        assert!(html.contains("a &amp; b &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script"), "no script at all");
        // p50 and p99 of each, nearest rank, as `Summary` prints them.
        for figure in ["100.0 ms", "198.0 ms", "1.50 s", "1.99 s"] {
            assert!(html.contains(figure), "{figure} not in the page");
        }
    }

    #[test]
    fn a_page_without_samples_says_so_instead_of_drawing() {
        let html = render(&Page::default()).unwrap();
        assert_eq!(html.matches("<svg").count(), 0);
        assert!(html.contains("No latency was measured"));
        assert!(html.contains("Nothing completed"));
    }
}
