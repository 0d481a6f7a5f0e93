//! Where the vectors live: fixed-size segments of contiguous int8 rows plus, optionally, a
//! full-precision copy of each vector for rescoring.
//!
//! Segments exist so that growth never copies the whole index while a writer holds the lock:
//! only the last segment grows (by doubling, up to [`SEGMENT_ROWS`]); a full one stays put and
//! a new one starts. Rows stay dense (removal moves the last row into the hole), so a scan
//! reads each segment as one contiguous block.

use std::collections::HashMap;

use half::f16;

use crate::IndexError;
use crate::quantize::Quantized;

/// Rows per segment: large enough that per-segment overhead vanishes, small enough that
/// doubling the last segment copies at most a few MiB under the write lock.
pub(crate) const SEGMENT_ROWS: usize = 4096;

/// The full-precision copy kept for rescoring, by choice of [`crate::Rescore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    None,
    F16,
    F32,
}

/// A full-precision copy of one (normalised) vector, prepared outside the lock.
pub(crate) enum FullCopy {
    None,
    F16(Vec<f16>),
    F32(Vec<f32>),
}

/// A vector fully prepared for storage, so the write lock only copies bytes.
pub(crate) struct Encoded {
    pub quantized: Quantized,
    pub full: FullCopy,
}

enum FullRows {
    None,
    F16(Vec<f16>),
    F32(Vec<f32>),
}

struct Segment {
    ids: Vec<u64>,
    scales: Vec<f32>,
    codes: Vec<i8>,
    full: FullRows,
}

/// A read-only view of one segment for scanning.
pub(crate) struct SegmentView<'a> {
    /// Global slot of the first row.
    pub first_slot: u32,
    pub ids: &'a [u64],
    pub scales: &'a [f32],
    pub codes: &'a [i8],
}

pub(crate) struct Store {
    dim: usize,
    padded: usize,
    precision: Precision,
    segments: Vec<Segment>,
    slots: HashMap<u64, u32>,
    /// Largest quantisation residual ever stored. Never lowered on removal, so it may overstate
    /// the current maximum; that only loosens the search's exactness bound.
    max_residual: f64,
}

impl Store {
    pub(crate) fn new(dim: usize, padded: usize, precision: Precision) -> Self {
        Self { dim, padded, precision, segments: Vec::new(), slots: HashMap::new(), max_residual: 0.0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn max_residual(&self) -> f64 {
        self.max_residual
    }

    pub(crate) fn segments(&self) -> impl Iterator<Item = SegmentView<'_>> {
        self.segments.iter().enumerate().map(|(i, s)| SegmentView {
            // Slots fit in u32 (checked on insert), hence so does every segment start.
            first_slot: (i * SEGMENT_ROWS) as u32,
            ids: &s.ids,
            scales: &s.scales,
            codes: &s.codes,
        })
    }

    /// Dot product of `query` (normalised) with the full-precision copy in `slot`, or `None`
    /// when the index keeps no such copies.
    pub(crate) fn full_dot(&self, slot: u32, query: &[f32]) -> Option<f32> {
        let (seg, row) = split(slot);
        let segment = self.segments.get(seg)?;
        let range = row * self.dim..(row + 1) * self.dim;
        match &segment.full {
            FullRows::None => None,
            FullRows::F32(rows) => Some(crate::rescore::dot_f32(query, rows.get(range)?)),
            FullRows::F16(rows) => Some(crate::rescore::dot_f16(query, rows.get(range)?)),
        }
    }

    pub(crate) fn upsert(&mut self, id: u64, encoded: &Encoded) -> Result<(), IndexError> {
        debug_assert_eq!(encoded.quantized.codes.len(), self.padded);
        self.max_residual = self.max_residual.max(encoded.quantized.residual);
        if let Some(&slot) = self.slots.get(&id) {
            let (seg, row) = split(slot);
            if let Some(segment) = self.segments.get_mut(seg) {
                segment.write(row, self.padded, self.dim, encoded);
                return Ok(());
            }
        }
        let slot = self.len();
        let max = u32::MAX as usize;
        if slot >= max {
            return Err(IndexError::Capacity { max });
        }
        if self.segments.last().is_none_or(|s| s.ids.len() == SEGMENT_ROWS) {
            self.segments.push(Segment::new(self.precision));
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.push(id, self.padded, self.dim, encoded);
        }
        self.slots.insert(id, slot as u32);
        Ok(())
    }

    /// Removes `id` by moving the last row into its slot, so rows stay dense.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let Some(slot) = self.slots.remove(&id) else {
            return false;
        };
        let last = self.slots.len(); // the old length minus one: the last slot
        if slot as usize != last {
            let (src_seg, src_row) = split(last as u32);
            let (moved_id, moved) = self.segments[src_seg].read(src_row, self.padded, self.dim);
            let (dst_seg, dst_row) = split(slot);
            self.segments[dst_seg].write(dst_row, self.padded, self.dim, &moved);
            self.segments[dst_seg].ids[dst_row] = moved_id;
            self.slots.insert(moved_id, slot);
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.pop(self.padded, self.dim);
            if segment.ids.is_empty() {
                self.segments.pop();
            }
        }
        // Give memory back after mass deletions; the quarter/half hysteresis keeps the O(n)
        // rehash amortised O(1) per removal.
        if self.slots.len() * 4 < self.slots.capacity() {
            self.slots.shrink_to(self.slots.len() * 2);
        }
        true
    }

    /// Heap bytes held: allocated capacity of every buffer plus the id map's table.
    pub(crate) fn memory_bytes(&self) -> usize {
        let segments: usize = self
            .segments
            .iter()
            .map(|s| {
                s.ids.capacity() * size_of::<u64>()
                    + s.scales.capacity() * size_of::<f32>()
                    + s.codes.capacity()
                    + match &s.full {
                        FullRows::None => 0,
                        FullRows::F16(v) => v.capacity() * size_of::<f16>(),
                        FullRows::F32(v) => v.capacity() * size_of::<f32>(),
                    }
            })
            .sum();
        // std's HashMap (hashbrown) keeps a power-of-two bucket count at most 7/8 full and one
        // control byte per bucket (plus a group's worth of trailing control bytes).
        let buckets = if self.slots.capacity() == 0 { 0 } else { (self.slots.capacity() * 8 / 7).next_power_of_two() };
        let map = buckets * (size_of::<(u64, u32)>() + 1) + 16;
        segments + self.segments.capacity() * size_of::<Segment>() + map
    }
}

/// Global slot → (segment, row).
fn split(slot: u32) -> (usize, usize) {
    let slot = slot as usize;
    (slot / SEGMENT_ROWS, slot % SEGMENT_ROWS)
}

impl Segment {
    fn new(precision: Precision) -> Self {
        Self {
            ids: Vec::new(),
            scales: Vec::new(),
            codes: Vec::new(),
            full: match precision {
                Precision::None => FullRows::None,
                Precision::F16 => FullRows::F16(Vec::new()),
                Precision::F32 => FullRows::F32(Vec::new()),
            },
        }
    }

    /// Grows capacity by doubling up to [`SEGMENT_ROWS`] rows, with exact reservations so a
    /// full segment holds no slack.
    fn reserve_row(&mut self, padded: usize, dim: usize) {
        let rows = self.ids.len();
        if rows < self.ids.capacity() {
            return;
        }
        let extra = rows.max(16).min(SEGMENT_ROWS - rows);
        self.ids.reserve_exact(extra);
        self.scales.reserve_exact(extra);
        self.codes.reserve_exact(extra * padded);
        match &mut self.full {
            FullRows::None => {}
            FullRows::F16(v) => v.reserve_exact(extra * dim),
            FullRows::F32(v) => v.reserve_exact(extra * dim),
        }
    }

    fn push(&mut self, id: u64, padded: usize, dim: usize, encoded: &Encoded) {
        self.reserve_row(padded, dim);
        self.ids.push(id);
        self.scales.push(encoded.quantized.scale);
        self.codes.extend_from_slice(&encoded.quantized.codes);
        match (&mut self.full, &encoded.full) {
            (FullRows::F16(rows), FullCopy::F16(v)) => rows.extend_from_slice(v),
            (FullRows::F32(rows), FullCopy::F32(v)) => rows.extend_from_slice(v),
            _ => {}
        }
    }

    fn write(&mut self, row: usize, padded: usize, dim: usize, encoded: &Encoded) {
        self.scales[row] = encoded.quantized.scale;
        self.codes[row * padded..(row + 1) * padded].copy_from_slice(&encoded.quantized.codes);
        match (&mut self.full, &encoded.full) {
            (FullRows::F16(rows), FullCopy::F16(v)) => {
                rows[row * dim..(row + 1) * dim].copy_from_slice(v);
            }
            (FullRows::F32(rows), FullCopy::F32(v)) => {
                rows[row * dim..(row + 1) * dim].copy_from_slice(v);
            }
            _ => {}
        }
    }

    /// Copies a row out (id, encoded data); used to move the last row on removal.
    fn read(&self, row: usize, padded: usize, dim: usize) -> (u64, Encoded) {
        let full = match &self.full {
            FullRows::None => FullCopy::None,
            FullRows::F16(rows) => FullCopy::F16(rows[row * dim..(row + 1) * dim].to_vec()),
            FullRows::F32(rows) => FullCopy::F32(rows[row * dim..(row + 1) * dim].to_vec()),
        };
        let quantized = Quantized {
            codes: self.codes[row * padded..(row + 1) * padded].to_vec(),
            scale: self.scales[row],
            residual: 0.0, // not needed: the store's maximum already covers this row
        };
        (self.ids[row], Encoded { quantized, full })
    }

    fn pop(&mut self, padded: usize, dim: usize) {
        let rows = self.ids.len().saturating_sub(1);
        self.ids.truncate(rows);
        self.scales.truncate(rows);
        self.codes.truncate(rows * padded);
        match &mut self.full {
            FullRows::None => {}
            FullRows::F16(v) => v.truncate(rows * dim),
            FullRows::F32(v) => v.truncate(rows * dim),
        }
    }
}
