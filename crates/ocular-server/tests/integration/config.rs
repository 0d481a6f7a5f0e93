//! Configuration parsing, validation and the original services' variable names.

use ocular_server::config::env_aliases;

use crate::common::config;

fn aliases(vars: &[(&str, &str)]) -> Result<Vec<(&'static str, String)>, String> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env_aliases(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

#[test]
fn defaults_match_the_issue() {
    let c = config(&[]);
    assert_eq!(c.listen_addr().to_string(), "127.0.0.1:8000");
    assert_eq!(c.data_dir, std::path::PathBuf::from("./data"));
    assert_eq!(c.models_dir, std::path::PathBuf::from("./models"));
    assert!(c.preload && c.enable_gradcam);
    assert_eq!((c.top_k, c.max_concurrency), (10, 10));
    c.validate().expect("defaults are valid");
}

#[test]
fn original_variable_names_map_to_ours() {
    let out = aliases(&[
        ("PORT", "9000"),
        ("LAZY_LOAD_MODEL", "true"),
        ("ENABLE_GRADCAM", "False"),
        ("TOP_K", "5"),
        ("SIMILARITY_THRESHOLD", "0.7"),
        ("MAX_BATCH_SIZE", "4"),
        ("DATABASE_URL", "postgres://u:p@h/db"),
    ])
    .expect("valid");
    let get = |k: &str| out.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("OCULAR_PORT"), Some("9000"));
    assert_eq!(get("OCULAR_PRELOAD"), Some("false"), "LAZY_LOAD_MODEL=true means no preload");
    assert_eq!(get("OCULAR_ENABLE_GRADCAM"), Some("false"));
    assert_eq!(get("OCULAR_TOP_K"), Some("5"));
    assert_eq!(get("OCULAR_SIMILARITY_THRESHOLD"), Some("0.7"));
    assert_eq!(get("OCULAR_MAX_BATCH_SIZE"), Some("4"));
    assert_eq!(get("OCULAR_DATABASE_URL"), Some("postgres://u:p@h/db"));
}

#[test]
fn ocular_variables_win_over_aliases() {
    let out =
        aliases(&[("PORT", "9000"), ("OCULAR_PORT", "7000"), ("PRELOAD_MODEL", "false"), ("LAZY_LOAD_MODEL", "false")])
            .expect("valid");
    assert!(out.iter().all(|(n, _)| *n != "OCULAR_PORT"));
    // PRELOAD_MODEL is listed first and wins over LAZY_LOAD_MODEL.
    assert_eq!(out, vec![("OCULAR_PRELOAD", "false".to_string())]);
}

#[test]
fn bad_alias_values_are_clear_errors() {
    let err = aliases(&[("LAZY_LOAD_MODEL", "maybe")]).expect_err("not a boolean");
    assert!(err.contains("LAZY_LOAD_MODEL") && err.contains("maybe"), "{err}");
}

#[test]
fn invalid_values_fail_validation() {
    assert!(config(&["--similarity-threshold", "1.5"]).validate().unwrap_err().contains("threshold"));
    assert!(config(&["--top-k", "0"]).validate().is_err());
    assert!(config(&["--max-concurrency", "0"]).validate().is_err());
    assert!(config(&["--api-key", "short"]).validate().unwrap_err().contains("API key"));
}

#[test]
fn secrets_are_redacted() {
    let c = config(&["--api-key", "0123456789abcdef-secret", "--database-url", "postgres://me:hunter2@db/ocular"]);
    let text = c.redacted().to_string();
    assert!(!text.contains("hunter2") && !text.contains("secret"), "{text}");
    assert!(text.contains("postgres://me:***@db/ocular"), "{text}");
}

/// `--image-precision` / `--skin-precision` reach the registry (they once only worked as
/// environment variables): the image slot's version names the int8 graph or not.
#[test]
fn precision_flags_choose_the_graph_the_registry_loads() {
    use ocular_models::RegistryOptions;
    use ocular_models::session::SessionOptions;
    use ocular_server::search_models;

    // The installed models: an int8 precision runs the variant's self-check (a real session on
    // this CPU) before the registry uses it, so the graphs must be there, not just a manifest.
    let options = RegistryOptions {
        models_dir: crate::common::workspace_root().join("models"),
        ort_library: None,
        session: SessionOptions::default(),
        enabled: Some(vec!["efficientnet-lite0".into()]),
    };
    let image_version = |args: &[&str]| {
        let c = config(args);
        let registry = search_models::discover(options.clone(), c.search_models, c.precisions()).expect("discover");
        registry.image.as_ref().expect("image slot").manifest().version.clone()
    };
    assert!(!image_version(&[]).contains("int8"), "fp32 is the image default");
    assert!(image_version(&["--image-precision", "int8"]).ends_with("+int8"));
    assert!(config(&["--skin-precision", "int8"]).precisions().skin == ocular_core::manifest::Precision::Int8);
}
