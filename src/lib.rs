//! colorizer: colorizes grayscale photos with the 313-bin classification method of Zhang et al.
//! (ECCV 2016), optionally guided by user colour hints. Layers: `color` (pure Lab and bin maths) ->
//! `engine` (ONNX sessions) -> `pipeline` (bytes in, bytes out) -> `http` and `cli`.

pub mod admission;
pub mod cli;
pub mod color;
pub mod config;
pub mod engine;
pub mod hints;
pub mod http;
pub mod hugepages;
pub mod models;
pub mod params;
pub mod pipeline;
pub mod startup;

/// An error and its sources, outermost first: "a: b: c" (for logs and the command line).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        // Some errors repeat their source's text in their own; say it once.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}
