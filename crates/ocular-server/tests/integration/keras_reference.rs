//! `fixtures/keras/serve/reference.json`, written by `scripts/keras_serve_reference.py`: the
//! Keras fixtures the serving and reload tests import, the recipe the script ran each with, and
//! Keras' own class scores (and Grad-CAM grids) on real photos. One reader for both suites.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ocular_convert::import::ImportOptions;
use serde::Deserialize;

use crate::common::workspace_root;

#[derive(Deserialize)]
pub struct Reference {
    pub models: Vec<Served>,
}

/// One fixture, the preprocessing the script applied, and what Keras answered.
#[derive(Deserialize, Clone)]
pub struct Served {
    pub fixture: String,
    pub width: u32,
    pub height: u32,
    pub scale: f32,
    pub mean: f32,
    pub std: f32,
    /// The numeric inputs besides the photo, by name (two-input fixtures).
    pub extras: BTreeMap<String, Vec<f32>>,
    pub cases: Vec<Case>,
}

/// One photo (a file of [`serve_dir`]) and Keras' output on it.
#[derive(Deserialize, Clone)]
pub struct Case {
    pub image: String,
    pub output: Vec<f32>,
    /// GradientTape's Grad-CAM, for the fixtures whose head allows it.
    pub gradcam: Option<RefGradcam>,
}

#[derive(Deserialize, Clone)]
pub struct RefGradcam {
    pub layer: String,
    pub class: usize,
    pub width: usize,
    pub height: usize,
    pub grid: Vec<f32>,
}

/// The reference file's folder: the photos the cases name.
pub fn serve_dir() -> PathBuf {
    workspace_root().join("fixtures/keras/serve")
}

pub fn reference() -> Reference {
    serde_json::from_str(&std::fs::read_to_string(serve_dir().join("reference.json")).unwrap()).unwrap()
}

/// The reference entry of `fixture`.
pub fn served(fixture: &str) -> Served {
    reference().models.into_iter().find(|m| m.fixture == fixture).unwrap()
}

impl Served {
    /// `ocular models import --name NAME` with the recipe the reference script applied.
    pub fn import_options(&self, name: impl Into<String>) -> ImportOptions {
        let mut opts = ImportOptions::new(name);
        (opts.scale, opts.mean, opts.std, opts.size) =
            (self.scale, [self.mean; 3], [self.std; 3], Some((self.width, self.height)));
        opts
    }
}
