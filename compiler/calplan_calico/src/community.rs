//! BGP community values as Calico accepts them (`validateCommunityValue`): `aa:nn`, two
//! 16-bit numbers, or `aa:nn:mm`, three 32-bit numbers (a large community).

/// A parsed community value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Community {
    Standard(u16, u16),
    Large(u32, u32, u32),
}

impl Community {
    /// Parses a value; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<Community, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let digits = |part: &&str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(digits) {
            return Err("expected `aa:nn` or `aa:nn:mm` (numbers separated by colons)".into());
        }
        if parts.len() == 2 {
            let half = |part: &str| part.parse::<u16>().map_err(|_| format!("`{part}` is not a 16-bit number (at most 65535)"));
            Ok(Community::Standard(half(parts[0])?, half(parts[1])?))
        } else {
            let part = |part: &str| part.parse::<u32>().map_err(|_| format!("`{part}` is not a 32-bit number (at most 4294967295)"));
            Ok(Community::Large(part(parts[0])?, part(parts[1])?, part(parts[2])?))
        }
    }

    /// Whether confd reads the text as a value rather than a community's name (its
    /// `isValidCommunity`: the shape alone, without the range check).
    pub fn looks_like_value(text: &str) -> bool {
        let parts: Vec<&str> = text.split(':').collect();
        (2..=3).contains(&parts.len()) && parts.iter().all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_calico_validates_them() {
        assert_eq!(Community::parse("100:6532"), Ok(Community::Standard(100, 6532)));
        assert_eq!(Community::parse("100:555:107"), Ok(Community::Large(100, 555, 107)));
        assert!(Community::parse("65536:1").unwrap_err().contains("16-bit"));
        assert!(Community::parse("1:2:4294967296").unwrap_err().contains("32-bit"));
        assert!(Community::parse("bgp-comm").is_err());
        assert!(Community::parse("1:2:3:4").is_err());
        assert!(Community::parse("1:").is_err());
        assert!(Community::looks_like_value("65536:1") && !Community::looks_like_value("x:1"));
    }
}
