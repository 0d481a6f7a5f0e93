//! ocular-store
