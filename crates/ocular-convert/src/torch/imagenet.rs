//! The 1000 ImageNet-1k (ILSVRC-2012) class names, in the index order of every ImageNet
//! classifier's logits.
//!
//! `imagenet_classes.txt` was written by `scripts/torch_imagenet_classes.py` from torchvision's
//! bundled list (`torchvision.models._meta._IMAGENET_CATEGORIES`), which disambiguates the two
//! classes WordNet calls "crane" ("crane bird", "crane") and "maillot". Shipping it as data keeps
//! the server free of any download at run time.

use ocular_core::Label;

const CLASSES: &str = include_str!("imagenet_classes.txt");

/// Labels with `code` = the class index as a string and `name` = the readable class name.
pub fn imagenet_labels() -> Vec<Label> {
    CLASSES
        .lines()
        .enumerate()
        .map(|(i, name)| Label { code: i.to_string(), name: name.to_string(), description: None, malignant: None })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousand_unique_classes_in_index_order() {
        let labels = imagenet_labels();
        assert_eq!(labels.len(), 1000);
        assert_eq!(labels[0].name, "tench");
        assert_eq!(labels[281].name, "tabby");
        assert_eq!(labels[967].name, "espresso");
        assert_eq!(labels[999].name, "toilet tissue");
        let unique: std::collections::HashSet<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(unique.len(), 1000);
    }
}
