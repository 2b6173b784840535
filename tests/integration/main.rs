//! promptreg's integration tests: one binary, a module per feature.

mod common;

mod analyze;
mod cli;
mod compat;
mod contract;
mod corpus;
mod docs;
mod formats;
mod hermetic;
mod history;
mod layers;
mod models;
mod python;
mod reliability;
mod render;
mod review;
mod serve;
mod serve_follow;
mod serve_write;
mod ui;
mod validate;
mod watch;
mod whole;
mod writes;
