//! The integration tests of ocular-convert, one binary (see STYLE.md).

mod bert;
mod keras;
mod quantize;
mod torch;
