pub mod config;
pub mod images;
pub mod render;
