//! Embeddings as bytes: little-endian `f32`s, 4 bytes each, the same on every backend.

use modelforge_core::StoreError;

/// The stored form of an embedding.
pub(crate) fn encode(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An embedding read back; a length that is not a multiple of 4 means a corrupt row.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    if bytes.len() % 4 != 0 {
        return Err(StoreError::Database {
            context: "decoding an embedding".to_owned(),
            source: format!("{} bytes is not a whole number of f32 values", bytes.len()).into(),
        });
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let values = [1.0_f32, -0.5, f32::MIN_POSITIVE];
        assert_eq!(decode(&encode(&values)).unwrap(), values);
        assert_eq!(encode(&[1.0]), [0x00, 0x00, 0x80, 0x3f], "little-endian IEEE 754");
        assert!(decode(&[1, 2, 3]).is_err());
    }
}
