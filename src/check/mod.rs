//! The checks over a registry: `validate`, the version diff, the pull-request review and its
//! markdown. Uses: `registry` and everything under it.

pub mod diff;
pub mod markdown;
pub mod review;
#[cfg(feature = "model")]
pub mod review_eval;
pub mod validate;
