//! colorizer: colorizes grayscale photos with the 313-bin classification method of Zhang et al.
//! (ECCV 2016). See DESIGN.md for the shape of the code.

pub mod cli;
pub mod color;
pub mod config;
pub mod engine;
pub mod http;
pub mod models;
pub mod pipeline;
pub mod startup;
