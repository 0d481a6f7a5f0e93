//! `ocular models import`: what a user's converted Keras classifier needs to be served, decided
//! and checked before anything is installed.
//!
//! A conversion proves the graph computes what Keras computes; serving needs more: which input
//! takes the photo (one N×H×W×3 input with a fixed size), which inputs take extra numbers (N×K
//! vectors, sent as form fields), which output holds the class scores (the first N×K output),
//! what each class is called, how pixels are scaled, and whether Grad-CAM is exact. Each of
//! those is checked here against the converted graph and refused with what to change, so a
//! model that could not be served is never installed (the folder is only renamed into place
//! after every check passed, see `install::import_keras`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ocular_core::{ImagePreprocess, Label, Layout, ModelKind, ResizeMode, TensorSpec};
use serde::Deserialize;

use crate::keras::Converted;

/// Largest labels file read (a million classes fit in far less).
const MAX_LABELS_BYTES: u64 = 4 << 20;

/// What the person importing a model decides; everything else comes from the Keras file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Folder and model name.
    pub name: String,
    /// [`ModelKind::Imported`] (served as a classifier) or [`ModelKind::SkinClassifier`].
    pub kind: ModelKind,
    /// Class labels, in output order; `None` numbers the classes.
    pub labels: Option<Vec<Label>>,
    /// Pixel recipe: `(pixel * scale - mean[c]) / std[c]`. Keras files usually normalise
    /// inside the model (Rescaling/Normalization layers), hence the identity default.
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Input size (width, height) for a model whose image input has no fixed size.
    pub size: Option<(u32, u32)>,
    pub gradcam: GradcamChoice,
    /// Replace an installed model of the same name (refused otherwise).
    pub replace: bool,
}

impl ImportOptions {
    /// Defaults for `name`: a classifier, numbered labels, pixels as they are, automatic Grad-CAM.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: ModelKind::Imported,
            labels: None,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            size: None,
            gradcam: GradcamChoice::Auto,
            replace: false,
        }
    }
}

/// Which layer Grad-CAM explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GradcamChoice {
    /// The layer feeding the classifier head's global average pooling, when the head allows
    /// exact Grad-CAM; none otherwise (the import says why).
    Auto,
    /// No Grad-CAM, even where it would be exact.
    Off,
    /// This layer, and the import fails unless it is the one exact Grad-CAM can use.
    Layer(String),
}

/// Why an import was refused. Nothing is installed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("model name {0:?} must be 1-64 letters, digits, '-', '_' or '.', not starting with '.'")]
    BadName(String),
    #[error("a model named {name:?} is already installed in {}; choose another --name or pass --replace", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("cannot read the labels file {}", path.display())]
    LabelsRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("labels file {}: {reason}", path.display())]
    Labels { path: PathBuf, reason: String },
    #[error("labels file {} is not valid JSON labels ([\"name\", ...] or [{{\"code\", \"name\", \"malignant\"}}, ...])", path.display())]
    LabelsJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The graph's inputs or outputs cannot be served; the message says which and why.
    #[error("{0}")]
    Shape(String),
    #[error("{labels} labels for the {classes} classes of output {output}; give exactly one label per class")]
    LabelCount { labels: usize, classes: usize, output: String },
    #[error("preprocessing: {0}")]
    Preprocess(String),
    #[error("Grad-CAM on layer {wanted:?} is not available: {reason}")]
    Gradcam { wanted: String, reason: String },
}

/// What [`check`] decided: everything the manifest records for serving.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: ImagePreprocess,
    pub image_input: String,
    /// Extra numeric inputs: name and width.
    pub extra_inputs: Vec<(String, usize)>,
    /// The output holding the class scores.
    pub output: String,
    pub labels: Vec<Label>,
}

/// Checks a model name for use as a folder name.
pub fn check_name(name: &str) -> Result<(), ImportError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok { Ok(()) } else { Err(ImportError::BadName(name.into())) }
}

/// Refuses an import whose name is taken, unless it may replace it.
pub fn check_free(models_dir: &Path, opts: &ImportOptions) -> Result<(), ImportError> {
    let path = models_dir.join(&opts.name);
    if path.exists() && !opts.replace {
        return Err(ImportError::Exists { name: opts.name.clone(), path });
    }
    Ok(())
}

/// Reads labels: JSON (`["a", ...]` or `[{"code", "name", "malignant"?, "description"?}, ...]`)
/// when the file starts with `[`, otherwise text with one label per line (blank lines skipped).
/// Codes must be unique.
pub fn read_labels(path: &Path) -> Result<Vec<Label>, ImportError> {
    let read = |source| ImportError::LabelsRead { path: path.to_path_buf(), source };
    let len = std::fs::metadata(path).map_err(read)?.len();
    let bad = |reason: String| ImportError::Labels { path: path.to_path_buf(), reason };
    if len > MAX_LABELS_BYTES {
        return Err(bad(format!("{len} bytes; at most {MAX_LABELS_BYTES} are read")));
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let text = text.trim_start_matches('\u{feff}');
    let labels: Vec<Label> = if text.trim_start().starts_with('[') {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Name(String),
            Label(Label),
        }
        let entries: Vec<Entry> = serde_json::from_str(text)
            .map_err(|source| ImportError::LabelsJson { path: path.to_path_buf(), source })?;
        entries
            .into_iter()
            .map(|e| match e {
                Entry::Name(n) => Label { code: n.clone(), name: n, description: None, malignant: None },
                Entry::Label(l) => l,
            })
            .collect()
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| Label { code: l.into(), name: l.into(), description: None, malignant: None })
            .collect()
    };
    if labels.is_empty() {
        return Err(bad("no labels in it".into()));
    }
    let mut seen = HashSet::new();
    for l in &labels {
        if l.code.trim().is_empty() || l.name.trim().is_empty() {
            return Err(bad("a label has an empty code or name".into()));
        }
        if !seen.insert(l.code.as_str()) {
            return Err(bad(format!("label {:?} appears twice; codes must be unique", l.code)));
        }
    }
    Ok(labels)
}

fn shape(t: &TensorSpec) -> String {
    let dims: Vec<String> = t.shape.iter().map(|d| if *d < 0 { "?".into() } else { d.to_string() }).collect();
    format!("{} [{}]", t.name, dims.join(", "))
}

/// Decides how the converted model is served, or says why it cannot be.
pub fn check(c: &Converted, opts: &ImportOptions) -> Result<Plan, ImportError> {
    let serveable = "ocular serves one RGB photo input (N, H, W, 3) plus optional numeric vectors (N, K)";
    let images: Vec<&TensorSpec> = c.inputs.iter().filter(|i| i.shape.len() == 4).collect();
    let image = match images[..] {
        [one] => one,
        [] => return Err(ImportError::Shape(format!("no image input ({serveable}); inputs: {}", list(&c.inputs)))),
        _ => {
            return Err(ImportError::Shape(format!("several image inputs ({serveable}); inputs: {}", list(&c.inputs))));
        }
    };
    if image.shape[3] != 3 {
        return Err(ImportError::Shape(format!(
            "input {} has {} channels, not 3 (RGB); {serveable}",
            shape(image),
            image.shape[3]
        )));
    }
    let mut extra_inputs = Vec::new();
    for i in c.inputs.iter().filter(|i| i.name != image.name) {
        match i.shape[..] {
            [_, k] if k > 0 => extra_inputs.push((i.name.clone(), k as usize)),
            _ => {
                return Err(ImportError::Shape(format!(
                    "input {} has rank {} (or no fixed width); {serveable}",
                    shape(i),
                    i.shape.len()
                )));
            }
        }
    }
    if opts.kind == ModelKind::SkinClassifier && !matches!(extra_inputs[..], [] | [(_, 10)]) {
        return Err(ImportError::Shape(format!(
            "a skin model (--skin) takes the photo and, optionally, the 10-value metadata vector; inputs: {}",
            list(&c.inputs)
        )));
    }
    let (width, height) = match (image.shape[2], image.shape[1], opts.size) {
        (w, h, None) if w > 0 && h > 0 => (w as u32, h as u32),
        (w, h, Some((sw, sh))) if w > 0 && h > 0 => {
            if (sw as i64, sh as i64) != (w, h) {
                return Err(ImportError::Preprocess(format!(
                    "--size {sw}x{sh} differs from the model's fixed input size {w}x{h}"
                )));
            }
            (sw, sh)
        }
        (_, _, Some((sw, sh))) if (1..=4096).contains(&sw) && (1..=4096).contains(&sh) => (sw, sh),
        (_, _, Some((sw, sh))) => {
            return Err(ImportError::Preprocess(format!("--size {sw}x{sh} is outside 1x1..4096x4096")));
        }
        _ => {
            return Err(ImportError::Preprocess(format!(
                "input {} has no fixed height and width; pass --size WIDTHxHEIGHT",
                shape(image)
            )));
        }
    };
    let finite = opts.scale.is_finite() && opts.mean.iter().chain(&opts.std).all(|v| v.is_finite());
    if !finite || opts.scale == 0.0 || opts.std.contains(&0.0) {
        return Err(ImportError::Preprocess("scale and std must be finite and non-zero, mean finite".into()));
    }
    let feature = c.gradcam.as_ref().map(|g| g.feature_output.as_str());
    let output = c
        .outputs
        .iter()
        .filter(|o| Some(o.name.as_str()) != feature)
        .find(|o| matches!(o.shape[..], [_, k] if k > 0))
        .ok_or_else(|| {
            ImportError::Shape(format!(
                "no class-score output (N, K) among the outputs: {}; ocular serves classifiers",
                list(&c.outputs)
            ))
        })?;
    let classes = output.shape[1] as usize;
    let labels = match &opts.labels {
        Some(l) if l.len() != classes => {
            return Err(ImportError::LabelCount { labels: l.len(), classes, output: output.name.clone() });
        }
        Some(l) => l.clone(),
        None => (0..classes)
            .map(|i| Label { code: i.to_string(), name: format!("class {i}"), description: None, malignant: None })
            .collect(),
    };
    if let GradcamChoice::Layer(wanted) = &opts.gradcam {
        match &c.gradcam {
            Some(g) if &g.layer == wanted => {}
            Some(g) => {
                return Err(ImportError::Gradcam {
                    wanted: wanted.clone(),
                    reason: format!(
                        "exact Grad-CAM needs the layer whose output the head averages, here {:?}",
                        g.layer
                    ),
                });
            }
            None => {
                let reason = c.gradcam_unavailable.clone().unwrap_or_else(|| "no classifier head found".into());
                return Err(ImportError::Gradcam { wanted: wanted.clone(), reason });
            }
        }
    }
    if let Some(head) = c.head.as_ref().filter(|_| opts.gradcam != GradcamChoice::Off)
        && head.classes != classes
    {
        return Err(ImportError::Shape(format!(
            "the Grad-CAM head explains {} classes but output {} has {classes}",
            head.classes,
            shape(output)
        )));
    }
    Ok(Plan {
        image: ImagePreprocess {
            width,
            height,
            resize: ResizeMode::BilinearTf,
            layout: Layout::Nhwc,
            scale: opts.scale,
            mean: opts.mean,
            std: opts.std,
        },
        image_input: image.name.clone(),
        extra_inputs,
        output: output.name.clone(),
        labels,
    })
}

fn list(tensors: &[TensorSpec]) -> String {
    tensors.iter().map(shape).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn labels_come_from_text_lines_or_json() {
        let (_d, p) = write("cat\n\n dog \n");
        let l = read_labels(&p).unwrap();
        assert_eq!((l[0].code.as_str(), l[1].name.as_str(), l.len()), ("cat", "dog", 2));
        let (_d, p) =
            write(r#"[{"code": "mel", "name": "Melanoma", "malignant": true}, {"code": "nv", "name": "Nevus"}]"#);
        let l = read_labels(&p).unwrap();
        assert_eq!((l[0].malignant, l[1].malignant, l[1].name.as_str()), (Some(true), None, "Nevus"));
        let (_d, p) = write(r#"["a", "b"]"#);
        assert_eq!(read_labels(&p).unwrap()[1].code, "b");
    }

    #[test]
    fn bad_labels_are_refused_with_the_reason() {
        for (text, needle) in [
            ("a\nb\na\n", "appears twice"),
            ("\n\n", "no labels"),
            ("[{\"code\": 1}]", "not valid JSON"),
            ("[", "JSON"),
        ] {
            let (_d, p) = write(text);
            let e = read_labels(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    fn fixture(name: &str) -> Converted {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keras").join(name);
        crate::keras::convert(&path).unwrap()
    }

    #[test]
    fn a_skin_model_takes_a_photo_and_at_most_the_metadata_vector() {
        let skin = |n: &str| ImportOptions { kind: ModelKind::SkinClassifier, ..ImportOptions::new(n) };
        let e = check(&fixture("multi_input.keras"), &skin("x")).unwrap_err().to_string();
        assert!(e.contains("10-value metadata"), "{e}");
        let labels =
            (0..4).map(|i| Label { code: i.to_string(), name: i.to_string(), description: None, malignant: None });
        let image_only = ImportOptions { labels: Some(labels.collect()), ..skin("y") };
        assert!(check(&fixture("efficientnet_like.keras"), &image_only).is_ok());
        // As a plain classifier the two-input model is fine: `vec` becomes a form field.
        let plan = check(&fixture("multi_input.keras"), &ImportOptions::new("z")).unwrap();
        assert_eq!((plan.extra_inputs, plan.output.as_str()), (vec![("vec".to_string(), 5)], "probs"));
    }

    #[test]
    fn names_are_folder_safe() {
        for ok in ["my-model", "a.b_c2"] {
            assert!(check_name(ok).is_ok());
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
