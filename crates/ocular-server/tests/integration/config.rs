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
    let err = config(&["--inference-batch", "0"]).validate().expect_err("a batch of no rows");
    assert!(err.contains("inference_batch"), "{err}");
    assert!(config(&["--inference-batch", "65"]).validate().is_err());
    // One thread budget: --intra-threads when given, else the cores this process may use.
    assert_eq!(config(&["--intra-threads", "3"]).threads(), 3);
    assert_eq!(config(&[]).threads(), std::thread::available_parallelism().map_or(1, |n| n.get()));
    assert_eq!(config(&["--inference-batch", "1"]).inference_batch, Some(1));
    assert_eq!(config(&[]).inference_batch, None, "unset: each model keeps its own default");
    assert!(config(&["--api-key", "short"]).validate().unwrap_err().contains("API key"));
}

#[test]
fn secrets_are_redacted() {
    let c = config(&["--api-key", "0123456789abcdef-secret", "--database-url", "postgres://me:hunter2@db/ocular"]);
    let text = c.redacted().to_string();
    assert!(!text.contains("hunter2") && !text.contains("secret"), "{text}");
    assert!(text.contains("postgres://me:***@db/ocular"), "{text}");
    // `Debug` too: a config printed by `{:?}` (a panic, a debug log) shows no secret.
    let debug = format!("{c:?} {c:#?}");
    assert!(!debug.contains("hunter2") && !debug.contains("secret"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
}

/// Every setting a request checks is checked against the same bound at start-up: `TOP_K=200`
/// used to pass, then every search without `top_k` answered 400 (issue 16).
#[test]
fn settings_are_validated_against_the_request_limits() {
    let err = config(&["--top-k", "200"]).validate().expect_err("TOP_K above what a request may ask");
    assert!(err.contains("top_k 200") && err.contains("100"), "{err}");
    config(&["--top-k", "100"]).validate().expect("the request maximum is a valid default");
    let err = config(&["--max-json-bytes", "100"]).validate().expect_err("tiny JSON cap");
    assert!(err.contains("max_json_bytes"), "{err}");
    let err = config(&["--max-json-bytes", "30000000"]).validate().expect_err("JSON cap above the body cap");
    assert!(err.contains("max_json_bytes"), "{err}");
    let err = config(&["--max-inflight-body-bytes", "1000000"]).validate().expect_err("budget below one upload");
    assert!(err.contains("max_inflight_body_bytes"), "{err}");
    assert!(config(&["--max-connections", "0"]).validate().is_err());
    let err = config(&["--queue-timeout-ms", "40000"]).validate().expect_err("queue wait past the deadline");
    assert!(err.contains("queue_timeout_ms"), "{err}");
    assert!(config(&["--max-image-pixels", "0"]).validate().is_err());
}

/// A non-loopback address needs the key, or the explicit opt-in (which `serve` logs).
#[test]
fn public_binds_need_a_key_or_an_explicit_opt_in() {
    assert_eq!(config(&[]).check_public_bind(), Ok(None), "loopback needs nothing");
    assert_eq!(config(&["--host", "::1"]).check_public_bind(), Ok(None));
    let err = config(&["--host", "0.0.0.0"]).check_public_bind().expect_err("public without a key");
    assert!(err.contains("OCULAR_API_KEY") && err.contains("OCULAR_ALLOW_PUBLIC_WITHOUT_KEY"), "{err}");
    assert_eq!(config(&["--host", "0.0.0.0", "--api-key", "0123456789abcdef"]).check_public_bind(), Ok(None));
    let warning = config(&["--host", "10.0.0.5", "--allow-public-without-key", "true"]).check_public_bind();
    assert!(warning.expect("opted in").expect("a warning").contains("10.0.0.5:8000"));
    assert!(config(&["--host", "0.0.0.0"]).is_public() && !config(&[]).is_public());
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
