//! The `ai` node's port, [`Analytics`], and its statistical implementation.
//!
//! Operations and their input (a JSON array, selected by the node's `params.input`):
//!
//! * `summary` — numbers → `{count, mean, median, stddev, min, max, p90}`; `stddev` is the
//!   population standard deviation, `median`/`p90` interpolate linearly between closest ranks
//!   (numpy's default), so p90 of 1..=10 is 9.1.
//! * `trend` — numbers (x is the index 0, 1, …) or `[{x, y}]` → least squares
//!   `{count, slope, intercept, r2}`; needs two distinct x values. `r2` is 1 for a constant
//!   series that fits exactly.
//! * `anomalies` — numbers → `{mean, stddev, threshold, anomalies: [{index, value, zScore}]}`,
//!   the values whose |z-score| exceeds the threshold (default 3). A constant series has none.
//!
//! Anything else than finite numbers (or `{x, y}` objects for `trend`) is refused naming the
//! offending element.

use async_trait::async_trait;
use serde_json::{Value, json};

/// An analysis an `ai` node asks for.
// No `EnumString`: parsing `anomalies` needs the node's `threshold`, so params.rs matches by hand.
#[derive(Clone, Copy, Debug, PartialEq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Operation {
    /// Descriptive statistics.
    Summary,
    /// Least-squares line.
    Trend,
    /// Z-score outliers above `threshold`.
    Anomalies {
        /// |z| above which a value is reported.
        threshold: f64,
    },
}

impl Operation {
    /// Threshold used when an `anomalies` node gives none.
    pub const DEFAULT_THRESHOLD: f64 = 3.0;

    /// The name used in `params.operation`.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }
}

/// Why an analysis produced no result; the message is shown to the workflow author.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    /// The input does not suit the operation (not an array, non-numeric element, too short…).
    #[error("{0}")]
    InvalidInput(String),
    /// The analysis backend failed.
    #[error("analytics unavailable: {0}")]
    Unavailable(String),
}

/// Port of the `ai` node. Implementations must be deterministic for the same input when
/// workflows are to be replayable; the engine bounds the call by the run's deadline.
#[async_trait]
pub trait Analytics: Send + Sync {
    /// Runs `operation` on `input`.
    async fn analyze(&self, operation: &Operation, input: &Value) -> Result<Value, AnalyticsError>;
}

/// Plain descriptive statistics, computed in process.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatisticalAnalytics;

#[async_trait]
impl Analytics for StatisticalAnalytics {
    async fn analyze(&self, operation: &Operation, input: &Value) -> Result<Value, AnalyticsError> {
        match operation {
            Operation::Summary => summary(&numbers(input)?),
            Operation::Trend => trend(input),
            Operation::Anomalies { threshold } => anomalies(&numbers(input)?, *threshold),
        }
    }
}

fn invalid(message: String) -> AnalyticsError {
    AnalyticsError::InvalidInput(message)
}

fn items(input: &Value) -> Result<&Vec<Value>, AnalyticsError> {
    match input {
        Value::Array(a) if !a.is_empty() => Ok(a),
        Value::Array(_) => Err(invalid("the input array is empty".into())),
        other => Err(invalid(format!(
            "the input must be an array of numbers, not {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn number(v: &Value, at: &str) -> Result<f64, AnalyticsError> {
    v.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| invalid(format!("{at} is {}, expected a number", kind(v))))
}

fn numbers(input: &Value) -> Result<Vec<f64>, AnalyticsError> {
    items(input)?
        .iter()
        .enumerate()
        .map(|(i, v)| number(v, &format!("element {i}")))
        .collect()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn stddev(xs: &[f64], mean: f64) -> f64 {
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// Linear interpolation between closest ranks of sorted `xs` (non-empty).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn summary(xs: &[f64]) -> Result<Value, AnalyticsError> {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = mean(xs);
    Ok(json!({
        "count": xs.len(),
        "mean": m,
        "median": quantile(&sorted, 0.5),
        "stddev": stddev(xs, m),
        "min": sorted[0],
        "max": sorted[sorted.len() - 1],
        "p90": quantile(&sorted, 0.9),
    }))
}

fn trend(input: &Value) -> Result<Value, AnalyticsError> {
    let points: Vec<(f64, f64)> = items(input)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(o) => {
                let at = format!("element {i}");
                let x = o
                    .get("x")
                    .ok_or_else(|| invalid(format!("{at} has no `x`")))?;
                let y = o
                    .get("y")
                    .ok_or_else(|| invalid(format!("{at} has no `y`")))?;
                Ok((
                    number(x, &format!("{at}.x"))?,
                    number(y, &format!("{at}.y"))?,
                ))
            }
            other => Ok((i as f64, number(other, &format!("element {i}"))?)),
        })
        .collect::<Result<_, _>>()?;
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx == 0.0 {
        return Err(invalid(
            "a trend needs at least two distinct x values".into(),
        ));
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r2 = if syy == 0.0 {
        1.0
    } else {
        (sxy * sxy) / (sxx * syy)
    };
    Ok(json!({"count": points.len(), "slope": slope, "intercept": intercept, "r2": r2}))
}

fn anomalies(xs: &[f64], threshold: f64) -> Result<Value, AnalyticsError> {
    let m = mean(xs);
    let sd = stddev(xs, m);
    let found: Vec<Value> = if sd == 0.0 {
        Vec::new()
    } else {
        xs.iter()
            .enumerate()
            .filter_map(|(i, x)| {
                let z = (x - m) / sd;
                (z.abs() > threshold).then(|| json!({"index": i, "value": x, "zScore": z}))
            })
            .collect()
    };
    Ok(json!({"mean": m, "stddev": sd, "threshold": threshold, "anomalies": found}))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(op: Operation, input: Value) -> Result<Value, AnalyticsError> {
        StatisticalAnalytics.analyze(&op, &input).await
    }

    #[test]
    fn operations_keep_their_params_names() {
        let anomalies = Operation::Anomalies {
            threshold: Operation::DEFAULT_THRESHOLD,
        };
        let names = [Operation::Summary, Operation::Trend, anomalies].map(|o| o.as_str());
        assert_eq!(names, ["summary", "trend", "anomalies"]);
    }

    #[tokio::test]
    async fn summary_of_one_to_four_has_the_textbook_figures() {
        let out = run(Operation::Summary, json!([4, 1, 3, 2]))
            .await
            .expect("numbers");
        assert_eq!(out["count"], json!(4));
        assert_eq!(out["mean"], json!(2.5));
        assert_eq!(out["median"], json!(2.5));
        assert_eq!(out["min"], json!(1.0));
        assert_eq!(out["max"], json!(4.0));
        // population variance of 1..4 is 1.25
        assert!((out["stddev"].as_f64().expect("number") - 1.25f64.sqrt()).abs() < 1e-12);
        // rank 0.9 * 3 = 2.7 → 3 + 0.7 * (4 - 3)
        assert!((out["p90"].as_f64().expect("number") - 3.7).abs() < 1e-12);
    }

    #[tokio::test]
    async fn p90_of_one_to_ten_interpolates_to_nine_point_one() {
        let out = run(Operation::Summary, json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
            .await
            .expect("numbers");
        assert!((out["p90"].as_f64().expect("number") - 9.1).abs() < 1e-12);
    }

    #[tokio::test]
    async fn trend_of_y_equals_two_x_plus_one_has_slope_two_and_intercept_one() {
        let series = run(Operation::Trend, json!([1, 3, 5, 7]))
            .await
            .expect("series");
        assert_eq!(
            (
                series["slope"].clone(),
                series["intercept"].clone(),
                series["r2"].clone()
            ),
            (json!(2.0), json!(1.0), json!(1.0))
        );
        let points = run(
            Operation::Trend,
            json!([{"x": 10, "y": 21}, {"x": 0, "y": 1}, {"x": 5, "y": 11}]),
        )
        .await
        .expect("points");
        assert_eq!(
            (points["slope"].clone(), points["intercept"].clone()),
            (json!(2.0), json!(1.0))
        );
    }

    #[tokio::test]
    async fn anomalies_reports_only_values_beyond_the_threshold() {
        // mean 20, population stddev 40 → z(100) = 2, z(0) = -0.5
        let out = run(
            Operation::Anomalies { threshold: 1.5 },
            json!([0, 0, 0, 0, 100]),
        )
        .await
        .expect("numbers");
        assert_eq!(
            out["anomalies"],
            json!([{"index": 4, "value": 100.0, "zScore": 2.0}])
        );
        let none = run(Operation::Anomalies { threshold: 1.5 }, json!([7, 7, 7]))
            .await
            .expect("numbers");
        assert_eq!(none["anomalies"], json!([]));
    }

    #[tokio::test]
    async fn non_numeric_input_is_refused_naming_the_element() {
        let cases = [
            (
                Operation::Summary,
                json!([1, "2"]),
                "element 1 is a string, expected a number",
            ),
            (
                Operation::Summary,
                json!({"a": 1}),
                "the input must be an array of numbers, not an object",
            ),
            (Operation::Summary, json!([]), "the input array is empty"),
            (Operation::Trend, json!([{"x": 1}]), "element 0 has no `y`"),
            (
                Operation::Trend,
                json!([5]),
                "a trend needs at least two distinct x values",
            ),
        ];
        for (op, input, expected) in cases {
            let err = run(op, input.clone()).await.expect_err("invalid input");
            assert_eq!(
                err,
                AnalyticsError::InvalidInput(expected.into()),
                "input {input}"
            );
        }
    }
}
