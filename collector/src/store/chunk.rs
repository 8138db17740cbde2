//! Sample compression: the Gorilla scheme (Pelkonen et al., VLDB 2015) that Prometheus and
//! most time-series stores build on. Timestamps are stored as delta-of-delta, values as the XOR
//! with the previous value, both with variable-length bit codes. A regular 10 s series with a
//! slowly moving value costs a few bits per sample instead of 16 bytes.
//!
//! Only the store calls this module: the writer encodes a series' head samples into one chunk
//! when it flushes, and readers decode chunks they select. Decoding never panics: a truncated or
//! corrupt chunk is an error the caller reports.

use crate::model::Sample;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk is truncated: wanted {wanted} more bits at bit {at}")]
    Truncated { at: usize, wanted: u32 },
    #[error("chunk header is corrupt")]
    BadHeader,
}

struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 means the last byte is full or there is none).
    used: u32,
}

impl BitWriter {
    fn new(capacity: usize) -> Self {
        BitWriter {
            bytes: Vec::with_capacity(capacity),
            used: 0,
        }
    }

    fn bit(&mut self, bit: bool) {
        self.bits(u64::from(bit), 1);
    }

    /// Appends the low `count` bits of `value`, most significant first.
    fn bits(&mut self, value: u64, mut count: u32) {
        while count > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(count);
            let shift = count - take;
            let chunk = ((value >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << (free - take);
            }
            self.used = (self.used + take) % 8;
            count -= take;
        }
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn bit(&mut self) -> Result<bool, ChunkError> {
        Ok(self.bits(1)? == 1)
    }

    fn bits(&mut self, count: u32) -> Result<u64, ChunkError> {
        if self.pos + count as usize > self.bytes.len() * 8 {
            return Err(ChunkError::Truncated {
                at: self.pos,
                wanted: count,
            });
        }
        let mut out = 0u64;
        let mut left = count;
        while left > 0 {
            let byte = self.bytes[self.pos / 8];
            let offset = (self.pos % 8) as u32;
            let avail = 8 - offset;
            let take = avail.min(left);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = if take == 64 {
                chunk
            } else {
                (out << take) | chunk
            };
            self.pos += take as usize;
            left -= take;
        }
        Ok(out)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes samples (sorted by timestamp) into one chunk.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut w = BitWriter::new(samples.len() * 2 + 24);
    w.bits(samples.len() as u64, 32);
    let Some(first) = samples.first() else {
        return w.bytes;
    };
    w.bits(first.timestamp_ms as u64, 64);
    w.bits(first.value.to_bits(), 64);
    let mut prev_ts = first.timestamp_ms;
    let mut prev_delta = 0i64;
    let mut prev_bits = first.value.to_bits();
    // The (leading, trailing) zero window of the last value written in full; reusing it saves
    // the 11-bit header when consecutive XORs have the same shape.
    let mut window: Option<(u32, u32)> = None;
    for s in &samples[1..] {
        let delta = s.timestamp_ms.wrapping_sub(prev_ts);
        let dod = zigzag(delta.wrapping_sub(prev_delta));
        match dod {
            0 => w.bit(false),
            d if d < 1 << 7 => {
                w.bits(0b10, 2);
                w.bits(d, 7);
            }
            d if d < 1 << 9 => {
                w.bits(0b110, 3);
                w.bits(d, 9);
            }
            d if d < 1 << 12 => {
                w.bits(0b1110, 4);
                w.bits(d, 12);
            }
            d => {
                w.bits(0b1111, 4);
                w.bits(d, 64);
            }
        }
        prev_delta = delta;
        prev_ts = s.timestamp_ms;

        let bits = s.value.to_bits();
        let xor = bits ^ prev_bits;
        prev_bits = bits;
        if xor == 0 {
            w.bit(false);
            continue;
        }
        w.bit(true);
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        match window {
            Some((wl, wt)) if leading >= wl && trailing >= wt => {
                w.bit(false);
                w.bits(xor >> wt, 64 - wl - wt);
            }
            _ => {
                let meaningful = 64 - leading - trailing;
                w.bit(true);
                w.bits(u64::from(leading), 5);
                // 64 meaningful bits is written as 0: six bits hold 0..=63.
                w.bits(u64::from(meaningful % 64), 6);
                w.bits(xor >> trailing, meaningful);
                window = Some((leading, trailing));
            }
        }
    }
    w.bytes
}

/// Decodes a whole chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let mut r = BitReader { bytes, pos: 0 };
    let count = r.bits(32)? as usize;
    // Each sample needs at least two bits after the first, which bounds a corrupt count before
    // it can make us allocate.
    if count > 1 && (count - 1) * 2 + 160 > bytes.len() * 8 {
        return Err(ChunkError::BadHeader);
    }
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return Ok(out);
    }
    let mut ts = r.bits(64)? as i64;
    let mut bits = r.bits(64)?;
    out.push(Sample {
        timestamp_ms: ts,
        value: f64::from_bits(bits),
    });
    let mut delta = 0i64;
    let mut window = (0u32, 0u32);
    for _ in 1..count {
        let dod = if !r.bit()? {
            0
        } else if !r.bit()? {
            r.bits(7)?
        } else if !r.bit()? {
            r.bits(9)?
        } else if !r.bit()? {
            r.bits(12)?
        } else {
            r.bits(64)?
        };
        delta = delta.wrapping_add(unzigzag(dod));
        ts = ts.wrapping_add(delta);
        if r.bit()? {
            if r.bit()? {
                let leading = r.bits(5)? as u32;
                let mut meaningful = r.bits(6)? as u32;
                if meaningful == 0 {
                    meaningful = 64;
                }
                if leading + meaningful > 64 {
                    return Err(ChunkError::BadHeader);
                }
                window = (leading, 64 - leading - meaningful);
            }
            let (wl, wt) = window;
            let xor = r.bits(64 - wl - wt)? << wt;
            bits ^= xor;
        }
        out.push(Sample {
            timestamp_ms: ts,
            value: f64::from_bits(bits),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trip(samples: &[Sample]) -> usize {
        let bytes = encode(samples);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.timestamp_ms, b.timestamp_ms);
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        bytes.len()
    }

    fn s(t: i64, v: f64) -> Sample {
        Sample {
            timestamp_ms: t,
            value: v,
        }
    }

    #[test]
    fn empty_and_single() {
        round_trip(&[]);
        round_trip(&[s(1, 2.0)]);
    }

    #[test]
    fn regular_series_compresses_well() {
        let samples: Vec<Sample> = (0..720)
            .map(|i| s(1_700_000_000_000 + i * 10_000, 42.0))
            .collect();
        let size = round_trip(&samples);
        // 2 bits a sample plus the header and the first delta.
        assert!(size < 220, "{size}");
    }

    #[test]
    fn awkward_values_and_gaps_round_trip() {
        let values = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            1e-300,
            123.456,
            -7.0,
            0.1,
        ];
        let mut samples = Vec::new();
        let mut t = -5_000i64;
        for (i, v) in values.iter().cycle().take(200).enumerate() {
            t += [1i64, 10_000, 9_999, 3_000_000_000, 0, 70][i % 6];
            samples.push(s(t, *v));
        }
        round_trip(&samples);
        // Extreme timestamps.
        round_trip(&[s(i64::MIN, 1.0), s(i64::MAX, 2.0), s(0, 3.0)]);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let samples: Vec<Sample> = (0..50).map(|i| s(i * 1000, i as f64 * 1.5)).collect();
        let bytes = encode(&samples);
        for cut in 0..bytes.len() {
            let _ = decode(&bytes[..cut]);
        }
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0]).is_err());
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = decode(&flipped);
        }
    }
}
