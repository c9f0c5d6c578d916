//! colorizer: colorizes grayscale photos with the 313-bin classification method of Zhang et al.
//! (ECCV 2016), optionally guided by user colour hints. Layers: `color` (pure Lab and bin maths) ->
//! `engine` (ONNX sessions) -> `pipeline` (bytes in, bytes out) -> `http` and `cli`.

pub mod cli;
pub mod color;
pub mod config;
pub mod engine;
pub mod hints;
pub mod http;
pub mod models;
pub mod pipeline;
pub mod startup;
