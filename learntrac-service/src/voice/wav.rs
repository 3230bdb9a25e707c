//! The 44-byte RIFF header of 16-bit mono PCM, as the engines read it.

/// `pcm` as a WAV file at `rate` Hz.
pub fn encode(pcm: &[i16], rate: u32) -> Vec<u8> {
    let mut out = header(pcm.len() * 2, rate);
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Raw little-endian 16-bit PCM (what Polly answers) as a WAV file at `rate` Hz.
pub fn wrap(pcm_le: &[u8], rate: u32) -> Vec<u8> {
    let whole = &pcm_le[..pcm_le.len() - pcm_le.len() % 2];
    let mut out = header(whole.len(), rate);
    out.extend_from_slice(whole);
    out
}

/// The header, with room reserved for `bytes` of samples.
fn header(bytes: usize, rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(bytes).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + bytes);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out
}

/// Little-endian 16-bit samples from a binary frame (an odd last byte is dropped).
pub fn samples(bytes: &[u8]) -> impl Iterator<Item = i16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_samples_round_trip() {
        let wav = encode(&[0, 1, -1, i16::MAX], 16_000);
        assert_eq!(wav.len(), 44 + 8);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]), 36 + 8);
        assert_eq!(
            u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
            16_000
        );
        assert_eq!(
            samples(&wav[44..]).collect::<Vec<_>>(),
            [0, 1, -1, i16::MAX]
        );
        // Raw bytes wrapped give the same file; an odd last byte is not a sample.
        let raw: Vec<u8> = [0i16, 1, -1, i16::MAX]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .chain([7])
            .collect();
        assert_eq!(wrap(&raw, 16_000), wav);
    }
}
