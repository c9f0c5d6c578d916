//! The set of served models: those embedded in the binary plus `--model NAME=PATH` files, each
//! with its own session pool (`engine::Engine`) and, beside it, its own admission queue
//! (`admission::ModelQueue`: places, the wait for a session, the queue depth).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::admission::ModelQueue;
use crate::config::ModelArgs;
use crate::engine::{Engine, EngineError, ModelSource};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

pub use embedded::{EMBEDDED, EMBEDDED_DEFAULT};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelsError {
    #[error("--model {0:?}: expected NAME=PATH or PATH")]
    BadSpec(String),
    #[error("could not read model file {path}: {message}")]
    Read { path: String, message: String },
    #[error("two models are named {0:?}")]
    Duplicate(String),
    #[error("no model to serve: this binary embeds none; pass --model PATH")]
    Empty,
    #[error("the default model {0:?} is not among the loaded models ({1})")]
    UnknownDefault(String, String),
    #[error("unknown model {0:?}: embedded models are {1}; or give a path to an .onnx file")]
    Unknown(String, String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Reads a `NAME=PATH` or `PATH` spec.
pub(crate) fn source_from_spec(spec: &str) -> Result<ModelSource, ModelsError> {
    let (name, path) = match spec.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => (n.to_string(), p.to_string()),
        Some(_) => return Err(ModelsError::BadSpec(spec.into())),
        None => {
            let stem = Path::new(spec).file_stem().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
            (stem.ok_or_else(|| ModelsError::BadSpec(spec.into()))?, spec.to_string())
        }
    };
    let bytes = std::fs::read(&path).map_err(|e| ModelsError::Read { path: path.clone(), message: e.to_string() })?;
    Ok(ModelSource { name, bytes: bytes.into(), origin: path })
}

/// An embedded model by name.
pub(crate) fn embedded_source(name: &str) -> Option<ModelSource> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(n, b)| ModelSource {
        name: n.to_string(),
        bytes: Arc::from(*b),
        origin: "embedded".into(),
    })
}

/// A model given as an embedded NAME or a PATH (the CLI's `--model`); None: the embedded default.
pub(crate) fn resolve(spec: Option<&str>) -> Result<ModelSource, ModelsError> {
    let names = || EMBEDDED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    match spec {
        None => EMBEDDED_DEFAULT.and_then(embedded_source).ok_or(ModelsError::Empty),
        Some(s) => match embedded_source(s) {
            Some(src) => Ok(src),
            None if s.contains('=') || Path::new(s).exists() => source_from_spec(s),
            None => Err(ModelsError::Unknown(s.into(), names())),
        },
    }
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
    /// Loads the embedded models (unless disabled) and every `--model`.
    pub(crate) fn load(args: &ModelArgs, queue: usize) -> Result<Self, ModelsError> {
        let mut sources = Vec::new();
        if !args.no_embedded_models {
            sources.extend(EMBEDDED.iter().filter_map(|(n, _)| embedded_source(n)));
        }
        let embedded = sources.len();
        for spec in &args.models {
            sources.push(source_from_spec(spec)?);
        }
        let opts = args.runtime.pool_options(args.pool_size as usize);
        let mut models = BTreeMap::new();
        for src in &sources {
            if models.contains_key(&src.name) {
                return Err(ModelsError::Duplicate(src.name.clone()));
            }
            let engine = Arc::new(Engine::load(src, opts)?);
            let queue = ModelQueue::new(engine.info().pool_size, queue);
            models.insert(src.name.clone(), Served { engine, queue });
        }
        let default = match (&args.default_model, EMBEDDED_DEFAULT.filter(|_| !args.no_embedded_models)) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => sources.get(embedded).map(|s| s.name.clone()).ok_or(ModelsError::Empty)?,
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
