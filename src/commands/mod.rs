pub mod bootstrap;
pub mod config;
pub mod deploy;
pub mod images;
pub mod local;
pub mod render;
pub mod secrets;
pub mod status;
