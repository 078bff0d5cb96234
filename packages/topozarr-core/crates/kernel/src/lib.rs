//! The reduction kernel of topozarr: NaN-aware block reduction, one-pass pyramids of a tile and
//! accumulators for levels whose windows span several tiles. Pure Rust (no pyo3), so
//! `cargo test -p topozarr-kernel` runs without Python; the `topozarr-core` crate binds it.
//!
//! Modules are layered, each using only those on earlier lines (`tests/layers.rs` checks that no
//! `use crate::` edge points back up):
//!
//! 1. `any` (the ten dtypes as one value), `methods` (the method table), `pool` (the allocator)
//! 2. `error`
//! 3. `dtype`
//! 4. `ops` (per-window operators)
//! 5. `reduce`, `fast`, `columns` (drivers over window geometry), `fast_tile` (`pyramid_tile`'s
//!    float fast path)
//! 6. `kernel` (typed reductions), `tile`, `acc_geometry`, `accumulate`
//! 7. `mode_avx2`, `mode_large`, `mode_small`, `mode`, `mode_acc` (the majority method)
//! 8. `api` (the entry points: method parsing and dtype dispatch)
pub mod acc_geometry;
pub mod accumulate;
pub mod any;
pub mod api;
pub mod columns;
pub mod dtype;
pub mod error;
pub mod fast;
pub mod fast_tile;
pub mod kernel;
pub mod methods;
pub mod mode;
pub mod mode_acc;
#[cfg(target_arch = "x86_64")]
mod mode_avx2;
#[cfg(target_arch = "x86_64")]
mod mode_large;
pub mod mode_small;
pub mod ops;
pub mod pool;
pub mod reduce;
pub mod tile;
