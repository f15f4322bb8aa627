//! AS numbers as Calico reads them: a plain `uint32`, or dotted `a.b` with 16-bit halves.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An autonomous system number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsNumber(pub u32);

impl AsNumber {
    /// Calico's default when neither the cluster nor the node sets one.
    pub const CALICO_DEFAULT: AsNumber = AsNumber(64512);

    /// The asdot form, `1.10` for 65546; plain below 65536.
    pub fn dotted(self) -> String {
        if self.0 < 65536 { self.0.to_string() } else { format!("{}.{}", self.0 >> 16, self.0 & 0xffff) }
    }
}

/// `invalid AS Number format (x)`, Calico's own message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsNumberError(pub String);

impl fmt::Display for AsNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid AS Number format ({})", self.0)
    }
}

impl FromStr for AsNumber {
    type Err = AsNumberError;

    fn from_str(text: &str) -> Result<AsNumber, AsNumberError> {
        let error = || AsNumberError(text.to_string());
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        match text.split_once('.') {
            None if digits(text) => text.parse::<u32>().map(AsNumber).map_err(|_| error()),
            Some((high, low)) if digits(high) && digits(low) => {
                let high = high.parse::<u16>().map_err(|_| error())?;
                let low = low.parse::<u16>().map_err(|_| error())?;
                Ok(AsNumber((u32::from(high) << 16) | u32::from(low)))
            }
            _ => Err(error()),
        }
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Calico writes AS numbers as plain integers.
impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

/// Calico accepts an integer or a string (plain or dotted).
impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AsNumber, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Number(number) => {
                u32::try_from(number).map(AsNumber).map_err(|_| serde::de::Error::custom(AsNumberError(number.to_string())))
            }
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_dotted() {
        assert_eq!("63400".parse(), Ok(AsNumber(63400)));
        assert_eq!("1.10".parse(), Ok(AsNumber(65546)));
        assert_eq!(AsNumber(65546).dotted(), "1.10");
        assert_eq!("4294967295".parse(), Ok(AsNumber(u32::MAX)));
        for bad in ["", "4294967296", "1.", ".1", "65536.1", "a", "1.2.3", "-1"] {
            assert!(bad.parse::<AsNumber>().is_err(), "{bad}");
        }
        assert_eq!("x".parse::<AsNumber>().unwrap_err().to_string(), "invalid AS Number format (x)");
    }
}
