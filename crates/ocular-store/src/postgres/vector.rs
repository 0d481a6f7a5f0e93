//! pgvector's `vector` type in its binary wire format, without the `pgvector` crate.
//!
//! The format (pgvector `vector_send`/`vector_recv`): `int16` dimension, `int16` zero, then
//! that many big-endian `float4`. Binary rather than text so a vector travels bit-exact (the
//! conformance suite checks `-0.0`, subnormals and `f32::MAX`) and decoding is a byte swap per
//! component into a reused buffer, which is what streaming 100k vectors at start-up needs.

use std::error::Error;

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::StoreError;

type BoxError = Box<dyn Error + Sync + Send>;

/// pgvector's limit on dimensions (and `int16` holds it).
const MAX_DIM: usize = 16_000;

fn is_vector(ty: &Type) -> bool {
    ty.name() == "vector"
}

/// A vector to send as a `vector` parameter.
#[derive(Debug, Clone, Copy)]
pub(super) struct PgVector<'a>(pub &'a [f32]);

impl ToSql for PgVector<'_> {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let dim = i16::try_from(self.0.len())
            .ok()
            .filter(|&d| (d as usize) <= MAX_DIM)
            .ok_or_else(|| format!("a vector of {} dimensions is more than pgvector's {MAX_DIM}", self.0.len()))?;
        out.reserve(4 + 4 * self.0.len());
        out.extend_from_slice(&dim.to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        for x in self.0 {
            out.extend_from_slice(&x.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        is_vector(ty)
    }

    to_sql_checked!();
}

/// A `vector` column as received, borrowed from the row; [`RawVector::decode_into`] copies it
/// into a caller's buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawVector<'a>(&'a [u8]);

impl<'a> FromSql<'a> for RawVector<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(RawVector(raw))
    }

    fn accepts(ty: &Type) -> bool {
        is_vector(ty)
    }
}

impl RawVector<'_> {
    /// Decodes into `out`, reusing its allocation.
    pub(super) fn decode_into(&self, out: &mut Vec<f32>) -> Result<(), StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt { what: "embedding", detail };
        let (header, body) = self
            .0
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(format!("{} bytes is shorter than the vector header", self.0.len())))?;
        let dim = i16::from_be_bytes([header[0], header[1]]);
        let dim = usize::try_from(dim).map_err(|_| corrupt(format!("negative dimension {dim}")))?;
        let (words, rest) = body.as_chunks::<4>();
        if words.len() != dim || !rest.is_empty() {
            return Err(corrupt(format!("header says {dim} dimensions, body has {} bytes", body.len())));
        }
        out.clear();
        out.extend(words.iter().map(|w| f32::from_be_bytes(*w)));
        Ok(())
    }

    pub(super) fn to_vec(self) -> Result<Vec<f32>, StoreError> {
        let mut v = Vec::new();
        self.decode_into(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip_is_bit_exact() {
        let v = [0.0, -0.0, 1e-45, f32::MIN_POSITIVE, f32::MAX, f32::MIN, 1.0 / 3.0];
        let mut buf = bytes::BytesMut::new();
        PgVector(&v).to_sql(&Type::TEXT, &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 7, 0, 0]);
        let mut back = vec![9.0; 2];
        RawVector(&buf).decode_into(&mut back).unwrap();
        assert_eq!(v.map(f32::to_bits).to_vec(), back.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        assert!(RawVector(&buf[..9]).decode_into(&mut back).is_err());
        assert!(RawVector(&[0, 1]).decode_into(&mut back).is_err());
        let too_long = vec![0.0; MAX_DIM + 1];
        assert!(PgVector(&too_long).to_sql(&Type::TEXT, &mut buf).is_err());
    }
}
