/// The simulated payment processing time, in milliseconds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl DelayRange {
    pub const DEFAULT: DelayRange = DelayRange {
        min_ms: 500,
        max_ms: 1000,
    };
    /// The longest delay accepted, so a typo cannot hang payments for hours.
    pub const LIMIT_MS: u64 = 60_000;
}

impl std::str::FromStr for DelayRange {
    type Err = String;

    /// `MIN-MAX` or a single `N` (both in ms).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("'{s}' is not MIN-MAX milliseconds (e.g. 500-1000, or 0)");
        let (min, max) = s.split_once('-').unwrap_or((s, s));
        let min: u64 = min.trim().parse().map_err(|_| err())?;
        let max: u64 = max.trim().parse().map_err(|_| err())?;
        if min > max || max > Self::LIMIT_MS {
            return Err(err());
        }
        Ok(DelayRange {
            min_ms: min,
            max_ms: max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_ranges_parse() {
        assert_eq!("500-1000".parse(), Ok(DelayRange::DEFAULT));
        assert_eq!(
            "0".parse(),
            Ok(DelayRange {
                min_ms: 0,
                max_ms: 0
            })
        );
        for bad in ["", "10-5", "a-b", "1-999999"] {
            assert!(bad.parse::<DelayRange>().is_err(), "{bad:?} accepted");
        }
    }
}
