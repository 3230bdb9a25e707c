//! The LearnTrac API: Trac tickets as learning concepts. The API itself is built under
//! issue #3; this crate so far holds the container health probe the image runs.

pub mod healthcheck;
