//! Numbers as the API shows them: six decimals, so arithmetic's last-bit noise
//! (`0.8400000000000001`) never reaches a client. Stored values keep full precision.

use serde::Serializer;

pub fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

pub fn ser<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round(*x))
}

pub fn ser_opt<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(v) => s.serialize_some(&round(*v)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn noise_is_gone_and_values_stay() {
        assert_eq!(super::round(0.1 + 0.2 + 0.54), 0.84);
        assert_eq!(super::round(0.123_456_4), 0.123_456);
        assert_eq!(super::round(1.0), 1.0);
    }
}
