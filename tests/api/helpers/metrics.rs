//! Reading `/metrics`: one series, a histogram's largest bucket, lost races.

use super::TestApp;

/// The value of one exported series, if present.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The smallest bucket bound that holds every batch of `aggregate`: a batch
/// larger than the bound below it was seen.
pub fn largest_batch_seen(metrics: &str, aggregate: &str) -> f64 {
    largest_bucket(
        metrics,
        "concert_pipeline_batch_size",
        &format!("aggregate=\"{aggregate}\","),
    )
}

/// The smallest bound of the histogram `family` (its series with `labels`,
/// each followed by a comma) that holds every value it recorded.
pub fn largest_bucket(metrics: &str, family: &str, labels: &str) -> f64 {
    let count_series = match labels.strip_suffix(',') {
        Some(labels) => format!("{family}_count{{{labels}}}"),
        None => format!("{family}_count"),
    };
    let count = metric(metrics, &count_series).unwrap_or(0.0);
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
        .into_iter()
        .find(|bound| {
            metric(
                metrics,
                &format!("{family}_bucket{{{labels}le=\"{bound}\"}}"),
            ) == Some(count)
        })
        .map_or(f64::INFINITY, f64::from)
}

/// Streams of `aggregate` whose batch lost a race and were decided again, as `/metrics` counts them.
pub async fn lost_races(app: &TestApp, aggregate: &str) -> f64 {
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    metric(
        &metrics,
        &format!("concert_pipeline_lost_races_total{{aggregate=\"{aggregate}\"}}"),
    )
    .unwrap_or(0.0)
}
