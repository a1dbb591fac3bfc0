//! Durations as people write them in arguments: `500ms`, `10s`, `5m`, `1h`.

use std::time::Duration;

/// A duration that could not be read, in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// A duration of more than zero and at most a week; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        DurationError(format!(
            "`{text}` is not a duration such as 500ms, 10s or 5m"
        ))
    })?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => {
            return Err(DurationError(format!(
                "`{text}`: the unit must be ms, s, m or h"
            )))
        }
    };
    if !(seconds > 0.0 && seconds <= 7.0 * 24.0 * 3600.0) {
        return Err(DurationError(format!(
            "`{text}` must be more than zero and at most a week"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}
