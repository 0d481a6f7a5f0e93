//! Layer weights from the HDF5 file of a Keras model, in the layer's own variable order.
//!
//! Two layouts exist:
//!
//! - Keras 3 (`model.weights.h5` inside `.keras`): variables are stored by *position* under
//!   auto-generated paths such as `layers/functional/layers/separable_conv2d_3/vars/0`. The
//!   path segment is the class name in snake case plus a counter per container, assigned by
//!   walking `model.layers` in order (`keras/src/saving/saving_lib.py`, `_save_container_state`
//!   and `_get_unique_name`); nested models are containers. [`keras3_names`] reproduces it.
//! - Legacy HDF5 (`model.save("x.h5")`, Keras 2 and 3): `model_weights/<layer name>` carries a
//!   `weight_names` attribute listing datasets such as `dense/kernel:0`; a nested model's group
//!   lists the weights of all its layers, each prefixed by the inner layer's name.

use hdf5_reader::Hdf5File;
use hdf5_reader::messages::datatype::Datatype;

use super::config::{ModelConfig, ModelKind};
use super::error::KerasError;

/// A float tensor in Keras' own layout (e.g. Conv2D kernels are `(kh, kw, in, out)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Where one layer's weights live.
#[derive(Debug, Clone)]
pub enum WeightKey {
    /// Keras 3: the group whose `vars/0`, `vars/1`, ... are the layer's variables.
    Keras3(String),
    /// Legacy: the top-level `model_weights` group and, inside a nested model, the inner
    /// layer's name that prefixes its weight names.
    Legacy { group: String, inner: Option<String> },
}

/// An opened weights file.
pub struct WeightStore {
    file: Hdf5File,
    legacy: bool,
}

fn h5(source: hdf5_reader::error::Error) -> KerasError {
    KerasError::Hdf5(source)
}

impl WeightStore {
    pub fn keras3(bytes: Vec<u8>) -> Result<Self, KerasError> {
        Ok(Self { file: Hdf5File::from_vec(bytes).map_err(h5)?, legacy: false })
    }

    /// A legacy `.h5` model file; returns the store and the `model_config` JSON text.
    pub fn legacy(file: Hdf5File) -> Result<(Self, String), KerasError> {
        let root = file.root_group().map_err(h5)?;
        let config = root
            .attribute("model_config")
            .map_err(|_| KerasError::MissingHdf5("model_config attribute"))?
            .read_string()
            .map_err(h5)?;
        Ok((Self { file, legacy: true }, config))
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// The layer's variables in creation order (kernel before bias, gamma before beta...).
    pub fn load(&self, key: &WeightKey) -> Result<Vec<Tensor>, KerasError> {
        match key {
            WeightKey::Keras3(path) => {
                let Ok(group) = self.file.group(&format!("{path}/vars")) else {
                    return Ok(Vec::new());
                };
                let (_, mut names) = group.member_names().map_err(h5)?;
                names.sort_by_key(|n| n.parse::<usize>().unwrap_or(usize::MAX));
                names.iter().map(|n| self.read(&format!("{path}/vars/{n}"))).collect()
            }
            WeightKey::Legacy { group, inner } => {
                let path = format!("model_weights/{group}");
                let Ok(g) = self.file.group(&path) else {
                    return Ok(Vec::new());
                };
                let names = match g.attribute("weight_names") {
                    // h5py writes an empty list as an empty float array, not as strings.
                    Ok(a) if a.shape.iter().product::<u64>() == 0 => Vec::new(),
                    Ok(a) => a.read_strings().map_err(h5)?,
                    Err(_) => Vec::new(),
                };
                names
                    .iter()
                    .filter(|n| match inner {
                        // `inner/kernel:0`: the component before the variable name is the layer.
                        Some(layer) => n.rsplit('/').nth(1) == Some(layer.as_str()),
                        None => true,
                    })
                    .map(|n| self.read(&format!("{path}/{n}")))
                    .collect()
            }
        }
    }

    fn read(&self, path: &str) -> Result<Tensor, KerasError> {
        let err = |source| KerasError::WeightRead { path: path.to_string(), source };
        let ds = self.file.dataset(path).map_err(err)?;
        let shape: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
        let data = match ds.dtype() {
            Datatype::FloatingPoint { size: 4, .. } => ds.read_array::<f32>().map_err(err)?.into_iter().collect(),
            Datatype::FloatingPoint { .. } => {
                ds.read_array::<f64>().map_err(err)?.into_iter().map(|v| v as f32).collect()
            }
            // Integer variables (Normalization's `count`) are never used at inference.
            _ => Vec::new(),
        };
        Ok(Tensor { shape, data })
    }
}

/// Keras' `naming.to_snake_case`: `SeparableConv2D` -> `separable_conv2d`, `ReLU` -> `re_lu`.
pub fn to_snake_case(name: &str) -> String {
    let s: Vec<char> = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", s): non-overlapping, left to right.
    let mut a = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        let starts_word = i + 2 < s.len() && s[i + 1].is_ascii_uppercase() && s[i + 2].is_ascii_lowercase();
        if starts_word {
            a.extend([s[i], '_', s[i + 1]]);
            i += 2;
            while i < s.len() && s[i].is_ascii_lowercase() {
                a.push(s[i]);
                i += 1;
            }
        } else {
            a.push(s[i]);
            i += 1;
        }
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2", s).lower()
    let mut out = String::with_capacity(a.len() + 8);
    let mut i = 0;
    while i < a.len() {
        if i + 1 < a.len() && a[i].is_ascii_lowercase() && a[i + 1].is_ascii_uppercase() {
            out.push(a[i]);
            out.push('_');
            out.push(a[i + 1]);
            i += 2;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.to_lowercase()
}

/// The Keras 3 storage name of each layer of `model`, in `model.layers` order; `None` for
/// a Sequential model's input layer, which `Sequential.layers` leaves out.
pub fn keras3_names(model: &ModelConfig) -> Vec<Option<String>> {
    let mut used: std::collections::HashMap<String, usize> = Default::default();
    model
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if model.kind == ModelKind::Sequential && i == 0 && l.class == "InputLayer" {
                return None;
            }
            let base = to_snake_case(&l.class);
            let n = used.entry(base.clone()).or_insert(0);
            let name = if *n == 0 { base } else { format!("{base}_{n}") };
            *n += 1;
            Some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::to_snake_case;

    #[test]
    fn snake_case_matches_keras() {
        // Expected values printed by keras.src.utils.naming.to_snake_case.
        for (class, snake) in [
            ("ReLU", "re_lu"),
            ("Conv2D", "conv2d"),
            ("SeparableConv2D", "separable_conv2d"),
            ("DepthwiseConv2D", "depthwise_conv2d"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("ZeroPadding2D", "zero_padding2d"),
            ("PReLU", "p_re_lu"),
            ("LSTM", "lstm"),
            ("InputLayer", "input_layer"),
            ("UpSampling2D", "up_sampling2d"),
            ("LeakyReLU", "leaky_re_lu"),
            ("TFOpLambda", "tf_op_lambda"),
        ] {
            assert_eq!(to_snake_case(class), snake, "{class}");
        }
    }
}
