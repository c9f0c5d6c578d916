//! The models a command has. `--model` / `COLORIZER_MODEL` means the same for `serve` and
//! `colorize`: a list of models, each `NAME=PATH`, `PATH` (named by its file stem) or the `NAME`
//! of a model embedded in the binary ([`ModelSpec`]); `--default-model` /
//! `COLORIZER_DEFAULT_MODEL` names the one used when nothing else says. `serve` loads the
//! embedded models plus every `--model` into [`Models`], each with its own session pool
//! (`engine::Engine`) and, beside it, its own admission queue (`admission::ModelQueue`: places,
//! the wait for a session, the queue depth); `colorize` loads only the model it runs
//! ([`choose`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::admission::ModelQueue;
use crate::config::{ModelArgs, ModelChoice};
use crate::engine::{Engine, EngineError, ModelSource};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

pub use embedded::{EMBEDDED, EMBEDDED_DEFAULT};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelsError {
    #[error("--model {0:?}: expected NAME=PATH, PATH or the NAME of an embedded model")]
    BadSpec(String),
    #[error("could not read model file {path}: {message}")]
    Read { path: String, message: String },
    #[error("two models are named {0:?}")]
    Duplicate(String),
    #[error("no model: none is embedded in this binary (or --no-embedded-models); pass --model NAME=PATH or PATH")]
    Empty,
    #[error("the default model {0:?} is none of the models ({1})")]
    UnknownDefault(String, String),
    #[error("unknown model {0:?}: embedded models are {1}; or give a path to an .onnx file (or NAME=PATH)")]
    Unknown(String, String),
    #[error("--model lists {0} models ({1}); say which to run with --default-model")]
    NoDefault(usize, String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The names of the embedded models, for messages.
fn embedded_names() -> String {
    let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// An embedded model's name as the binary holds it.
fn embedded_name(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().map(|(n, _)| *n).find(|n| *n == name)
}

/// One entry of `--model`: where a model comes from and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModelSpec {
    /// A model embedded in the binary, by name.
    Embedded(&'static str),
    /// An ONNX file, served under `name`.
    File { name: String, path: String },
}

impl ModelSpec {
    /// Reads `NAME=PATH`, the NAME of an embedded model, or `PATH` (named by its file stem). A
    /// bare word that is neither an embedded model nor a file (no such file, no `/`, no
    /// extension) is an unknown model name.
    pub(crate) fn parse(spec: &str) -> Result<Self, ModelsError> {
        if let Some((name, path)) = spec.split_once('=') {
            if name.is_empty() || path.is_empty() {
                return Err(ModelsError::BadSpec(spec.into()));
            }
            return Ok(Self::File { name: name.into(), path: path.into() });
        }
        if spec.is_empty() {
            return Err(ModelsError::BadSpec(spec.into()));
        }
        if let Some(name) = embedded_name(spec) {
            return Ok(Self::Embedded(name));
        }
        let path = Path::new(spec);
        if !(path.exists() || spec.contains('/') || spec.contains(std::path::MAIN_SEPARATOR) || path.extension().is_some()) {
            return Err(ModelsError::Unknown(spec.into(), embedded_names()));
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
        Ok(Self::File { name: stem.ok_or_else(|| ModelsError::BadSpec(spec.into()))?, path: spec.into() })
    }

    /// The name the model is known by.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Embedded(name) => name,
            Self::File { name, .. } => name,
        }
    }

    /// The model's bytes: the embedded ones, or the file read.
    pub(crate) fn source(&self) -> Result<ModelSource, ModelsError> {
        match self {
            Self::Embedded(name) => Ok(embedded_source(name).expect("an embedded model's name")),
            Self::File { name, path } => {
                let bytes = std::fs::read(path).map_err(|e| ModelsError::Read { path: path.clone(), message: e.to_string() })?;
                Ok(ModelSource { name: name.clone(), bytes: bytes.into(), origin: path.clone() })
            }
        }
    }
}

/// The `--model` entries, read; two entries with the same name are refused.
pub(crate) fn parse_list(specs: &[String]) -> Result<Vec<ModelSpec>, ModelsError> {
    let mut parsed: Vec<ModelSpec> = Vec::with_capacity(specs.len());
    for spec in specs {
        let spec = ModelSpec::parse(spec)?;
        if parsed.iter().any(|p| p.name() == spec.name()) {
            return Err(ModelsError::Duplicate(spec.name().into()));
        }
        parsed.push(spec);
    }
    Ok(parsed)
}

/// An embedded model by name.
pub(crate) fn embedded_source(name: &str) -> Option<ModelSource> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(n, b)| ModelSource {
        name: n.to_string(),
        bytes: Arc::from(*b),
        origin: "embedded".into(),
    })
}

/// The one model `colorize` runs, read (only that one): `--default-model` (a name among the
/// `--model` entries or of an embedded model); else the model `--model` lists when it lists
/// one; else the embedded default. Several `--model` entries and no `--default-model`: an
/// error that asks which.
pub(crate) fn choose(choice: &ModelChoice) -> Result<ModelSource, ModelsError> {
    let specs = parse_list(&choice.models)?;
    let names = |specs: &[ModelSpec]| specs.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ");
    let spec = match (choice.default_model.as_deref(), specs.as_slice()) {
        (Some(d), _) => match specs.iter().find(|s| s.name() == d) {
            Some(spec) => spec.clone(),
            None => embedded_name(d).map(ModelSpec::Embedded).ok_or_else(|| {
                let mut all: Vec<&str> = specs.iter().map(|s| s.name()).chain(EMBEDDED.iter().map(|(n, _)| *n)).collect();
                all.sort_unstable();
                all.dedup();
                ModelsError::UnknownDefault(d.into(), all.join(", "))
            })?,
        },
        (None, [one]) => one.clone(),
        (None, []) => EMBEDDED_DEFAULT.map(ModelSpec::Embedded).ok_or(ModelsError::Empty)?,
        (None, several) => return Err(ModelsError::NoDefault(several.len(), names(several))),
    };
    spec.source()
}

/// One served model: its engine and, beside it, its admission queue.
#[derive(Debug, Clone)]
pub struct Served {
    pub engine: Arc<Engine>,
    pub queue: Arc<ModelQueue>,
}

/// The loaded models.
#[derive(Debug)]
pub struct Models {
    models: BTreeMap<String, Served>,
    default: String,
}

impl Models {
    /// Loads the embedded models (unless disabled) and every `--model` (an embedded model's
    /// name among them is that model, loaded once). The default: `--default-model`, else the
    /// embedded default, else (none embedded, or `--no-embedded-models`) the first `--model`.
    pub(crate) fn load(args: &ModelArgs, queue: usize) -> Result<Self, ModelsError> {
        let specs = parse_list(&args.choice.models)?;
        let mut sources = Vec::new();
        if !args.no_embedded_models {
            sources.extend(EMBEDDED.iter().filter_map(|(n, _)| embedded_source(n)));
        }
        for spec in &specs {
            match spec {
                // Already among the embedded models loaded above.
                ModelSpec::Embedded(_) if !args.no_embedded_models => {}
                spec => sources.push(spec.source()?),
            }
        }
        let opts = args.runtime.pool_options(args.pool_size as usize);
        let mut models = BTreeMap::new();
        for src in &sources {
            if models.contains_key(&src.name) {
                return Err(ModelsError::Duplicate(src.name.clone()));
            }
            let engine = Arc::new(Engine::load(src, opts)?);
            let queue = ModelQueue::new(engine.name(), engine.info().pool_size, queue);
            models.insert(src.name.clone(), Served { engine, queue });
        }
        let default = match (&args.choice.default_model, EMBEDDED_DEFAULT.filter(|_| !args.no_embedded_models)) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => specs.first().map(|s| s.name().to_string()).ok_or(ModelsError::Empty)?,
        };
        if models.is_empty() {
            return Err(ModelsError::Empty);
        }
        if !models.contains_key(&default) {
            return Err(ModelsError::UnknownDefault(default, models.keys().cloned().collect::<Vec<_>>().join(", ")));
        }
        Ok(Self { models, default })
    }

    /// The model named `name` (None: the default) with its queue.
    pub fn served(&self, name: Option<&str>) -> Option<&Served> {
        self.models.get(name.unwrap_or(&self.default))
    }

    /// The engine of the model named `name` (None: the default).
    pub fn get(&self, name: Option<&str>) -> Option<&Arc<Engine>> {
        self.served(name).map(|s| &s.engine)
    }

    /// The admission queue of the model named `name` (None: the default).
    pub fn queue(&self, name: Option<&str>) -> Option<&Arc<ModelQueue>> {
        self.served(name).map(|s| &s.queue)
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn names(&self) -> Vec<String> {
        self.models.keys().cloned().collect()
    }

    /// Names of the models that take colour hints.
    pub fn hint_model_names(&self) -> Vec<String> {
        self.iter().filter(|e| e.info().hints).map(|e| e.name().to_string()).collect()
    }

    /// The engines, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Engine>> {
        self.models.values().map(|s| &s.engine)
    }

    /// The models with their queues, by name.
    pub fn iter_served(&self) -> impl Iterator<Item = &Served> {
        self.models.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, path: &str) -> ModelSpec {
        ModelSpec::File { name: name.into(), path: path.into() }
    }

    #[test]
    fn model_entries_are_name_path_embedded_name_or_path() {
        assert_eq!(ModelSpec::parse("x=/m/y.onnx").unwrap(), file("x", "/m/y.onnx"));
        assert_eq!(ModelSpec::parse("/m/y.onnx").unwrap(), file("y", "/m/y.onnx"));
        assert_eq!(ModelSpec::parse("y.onnx").unwrap(), file("y", "y.onnx"));
        if let Some((name, _)) = EMBEDDED.first() {
            assert_eq!(ModelSpec::parse(name).unwrap(), ModelSpec::Embedded(name));
            // NAME=PATH is a file, also under an embedded model's name.
            assert_eq!(ModelSpec::parse(&format!("{name}=a.onnx")).unwrap(), file(name, "a.onnx"));
        }
        assert!(matches!(ModelSpec::parse("sepia"), Err(ModelsError::Unknown(..))));
        for bad in ["", "=a.onnx", "x="] {
            assert!(matches!(ModelSpec::parse(bad), Err(ModelsError::BadSpec(_))), "{bad:?}");
        }
        assert!(matches!(parse_list(&["a=1.onnx".into(), "b/a.onnx".into()]), Err(ModelsError::Duplicate(n)) if n == "a"));
    }

    #[test]
    fn colorize_runs_the_default_the_only_model_or_asks() {
        let choice = |models: &[&str], default: Option<&str>| ModelChoice {
            models: models.iter().map(|m| m.to_string()).collect(),
            default_model: default.map(str::to_string),
        };
        let two = ["fixture=tests/fixtures/untrained-colorizer.onnx", "l2=tests/fixtures/untrained-l2.onnx"];
        assert_eq!(choose(&choice(&two, Some("l2"))).unwrap().name, "l2");
        assert_eq!(choose(&choice(&two[..1], None)).unwrap().name, "fixture");
        assert!(matches!(choose(&choice(&two, None)), Err(ModelsError::NoDefault(2, names)) if names == "fixture, l2"));
        assert!(matches!(choose(&choice(&two, Some("nope"))), Err(ModelsError::UnknownDefault(..))));
        assert_eq!(choose(&choice(&[], None)).ok().map(|s| s.name), EMBEDDED_DEFAULT.map(str::to_string));
    }
}
