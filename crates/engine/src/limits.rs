//! The limits a guest runs under, and parsing them from flags.

use std::time::Duration;

/// Limits for one invocation (fuel, time) and one instance (memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Fuel for one invocation: roughly, wasm instructions.
    pub fuel: Option<u64>,
    /// Linear memory, in bytes, that one instance may hold in all.
    pub max_memory: Option<usize>,
    /// Wall-clock time for one invocation.
    pub timeout: Option<Duration>,
}

/// Parses a byte size: a whole number with an optional unit, `B`, `KB`/`MB`/`GB`
/// (powers of 1000) or `KiB`/`MiB`/`GiB` (powers of 1024), as in `64MiB` or `1_000_000`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let cleaned: String = text.trim().chars().filter(|c| *c != '_').collect();
    let split = cleaned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(cleaned.len());
    let (number, unit) = cleaned.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use B, KB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: expected a number of bytes such as 64MiB"))?;
    number
        .checked_mul(multiplier)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a duration such as `500ms`, `2s` or `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("{text:?} is not a duration ({err}): use e.g. 500ms, 2s or 1m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("64 MB"), Ok(64_000_000));
        assert_eq!(parse_bytes("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_bytes("2gib"), Ok(2 << 30));
        assert!(
            parse_bytes("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_bytes("MiB").unwrap_err().contains("not a size"));
        assert!(parse_bytes("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
