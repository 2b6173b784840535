//! Version history tests.
