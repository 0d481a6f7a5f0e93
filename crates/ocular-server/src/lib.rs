//! ocular-server
