pub mod config;
pub mod render;
