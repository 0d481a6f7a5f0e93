//! The integration tests of ocular-convert, one binary (see docs/TESTING.md).

mod bert;
mod keras;
mod quantize;
mod torch;
