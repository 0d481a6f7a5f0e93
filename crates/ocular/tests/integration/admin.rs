//! Admin commands never touch a model or ONNX Runtime.
//!
//! The models directory is booby-trapped: the model file and the runtime library are FIFOs,
//! so opening either blocks forever. A command that finishes proves it never opened them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn ocular() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocular"));
    // Keep the developer's environment from leaking into the tests.
    for var in [
        "OCULAR_MODELS_DIR",
        "OCULAR_DATA_DIR",
        "OCULAR_DATABASE_URL",
        "DATABASE_URL",
        "ORT_DYLIB_PATH",
        "OCULAR_ORT_LIBRARY",
        "PORT",
        "MONGO_URI",
    ] {
        c.env_remove(var);
    }
    c
}

fn mkfifo(path: &std::path::Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success());
}

pub(crate) fn trapped_models_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("fixture");
    std::fs::create_dir_all(&model).expect("mkdir");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/fixture/manifest.json");
    std::fs::copy(root, model.join("manifest.json")).expect("manifest");
    mkfifo(&model.join("model.onnx"));
    std::fs::create_dir_all(dir.path().join("onnxruntime")).expect("mkdir");
    mkfifo(&dir.path().join("onnxruntime/libonnxruntime.so"));
    dir
}

/// Runs a command with a deadline; a hang means it opened a trapped file.
pub(crate) fn run_bounded(mut cmd: Command) -> (bool, String, Duration) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            return (status.success(), text, started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("command blocked: it opened a model file or the ONNX Runtime library");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn migrate_never_opens_a_model() {
    let models = trapped_models_dir();
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = ocular();
    cmd.args(["migrate", "--models-dir"]).arg(models.path()).arg("--data-dir").arg(data.path());
    let (ok, out, took) = run_bounded(cmd);
    assert!(ok, "{out}");
    assert!(out.contains("schema at version"), "{out}");
    assert!(data.path().join("ocular.db").is_file());
    eprintln!("ocular migrate took {} ms", took.as_millis());
}

#[test]
fn models_list_reads_manifests_only() {
    let models = trapped_models_dir();
    let mut cmd = ocular();
    cmd.args(["models", "list", "--models-dir"]).arg(models.path());
    let (ok, out, _) = run_bounded(cmd);
    assert!(ok, "{out}");
    assert!(out.contains("fixture"), "{out}");
}

#[test]
fn config_prints_effective_values_with_aliases_and_redaction() {
    let mut cmd = ocular();
    cmd.arg("config")
        .env("PORT", "9100")
        .env("LAZY_LOAD_MODEL", "true")
        .env("OCULAR_API_KEY", "abcdefghijklmnopqrstuvwxyz");
    let (ok, out, _) = run_bounded(cmd);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!((v["port"].as_u64(), v["preload"].as_bool()), (Some(9100), Some(false)));
    assert_eq!(v["api_key"], "***");
}

#[test]
fn invalid_configuration_fails_at_start_with_a_clear_message() {
    let mut cmd = ocular();
    cmd.args(["config", "--similarity-threshold", "3"]);
    let (ok, out, _) = run_bounded(cmd);
    assert!(!ok && out.contains("similarity threshold"), "{out}");
    let mut cmd = ocular();
    cmd.arg("config").env("PORT", "not-a-port");
    let (ok, out, _) = run_bounded(cmd);
    assert!(!ok && out.to_lowercase().contains("port"), "{out}");
}

#[test]
fn help_documents_every_environment_variable() {
    let (ok, out, _) = run_bounded({
        let mut c = ocular();
        c.args(["serve", "--help"]);
        c
    });
    assert!(ok, "{out}");
    for var in [
        "OCULAR_HOST",
        "OCULAR_PORT",
        "OCULAR_DATA_DIR",
        "OCULAR_MODELS_DIR",
        "OCULAR_PRELOAD",
        "OCULAR_MAX_CONCURRENCY",
        "OCULAR_API_KEY",
    ] {
        assert!(out.contains(var), "--help lacks {var}");
    }
}

#[test]
fn a_mongo_uri_from_the_old_service_gets_a_clear_message() {
    let models = trapped_models_dir();
    let mut c = ocular();
    c.env("OCULAR_MODELS_DIR", models.path()).env("MONGO_URI", "mongodb://db:27017/shop").arg("config");
    let (ok, out, _) = run_bounded(c);
    assert!(ok, "{out}");
    assert!(out.contains("MONGO_URI is set") && out.contains("mongoexport") && out.contains("ocular import"), "{out}");
}

/// A public address without an API key is refused before anything is opened (issue 16), and
/// the explicit opt-in starts with a loud warning. The models directory is trapped, so the
/// refusal provably happens before any model or the runtime is touched.
#[test]
fn serve_refuses_a_public_address_without_a_key() {
    let models = trapped_models_dir();
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = ocular();
    cmd.args(["serve", "--host", "0.0.0.0", "--port", "0", "--models-dir"])
        .arg(models.path())
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("OCULAR_API_KEY")
        .env_remove("OCULAR_ALLOW_PUBLIC_WITHOUT_KEY");
    let (ok, out, _) = run_bounded(cmd);
    assert!(!ok, "serve started on 0.0.0.0 without a key: {out}");
    assert!(out.contains("refusing to start") && out.contains("OCULAR_ALLOW_PUBLIC_WITHOUT_KEY"), "{out}");
    assert!(!data.path().join("ocular.db").exists(), "the refusal comes before the database is opened");
}

#[test]
fn purge_deletes_expired_analyses_and_never_opens_a_model() {
    let models = trapped_models_dir();
    let data = tempfile::tempdir().expect("tempdir");
    let db = ocular_store::Location::Sqlite(data.path().join("ocular.db"));
    let (old, recent) = {
        let store = ocular_store::open(&db, true).expect("store");
        let at = |days: u64| {
            let mut a =
                ocular_store::Analysis::new(serde_json::json!({}), serde_json::json!({}), serde_json::json!({}));
            a.created_at -= Duration::from_secs(days * 86_400);
            store.insert_analysis(&a).expect("insert");
            a.id
        };
        (at(8), at(6))
    };
    let mut cmd = ocular();
    cmd.args(["purge", "--analysis-retention-days", "7", "--models-dir"])
        .arg(models.path())
        .arg("--data-dir")
        .arg(data.path());
    let (ok, out, _) = run_bounded(cmd);
    assert!(ok, "{out}");
    assert!(out.contains("purged: 1 analyses older than 7 days"), "{out}");
    let store = ocular_store::open(&db, false).expect("store");
    assert!(store.get_analysis(&old).expect("read").is_none());
    assert!(store.get_analysis(&recent).expect("read").is_some());
}

#[test]
fn the_api_key_can_come_from_a_file_and_not_from_two_places() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("api_key");
    std::fs::write(&file, "abcdefghijklmnopqrstuvwxyz\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut cmd = ocular();
    cmd.arg("config").env("OCULAR_API_KEY_FILE", &file).env_remove("OCULAR_API_KEY");
    let (ok, out, _) = run_bounded(cmd);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["api_key"], "***", "the key from the file is the key, redacted");
    assert!(!out.contains("abcdefghij"), "{out}");

    let mut both = ocular();
    both.arg("config").env("OCULAR_API_KEY_FILE", &file).env("OCULAR_API_KEY", "zyxwvutsrqponmlkjihgfedcba");
    let (ok, out, _) = run_bounded(both);
    assert!(!ok && out.contains("both set"), "{out}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let mut writable = ocular();
    writable.arg("config").env("OCULAR_API_KEY_FILE", &file).env_remove("OCULAR_API_KEY");
    let (ok, out, _) = run_bounded(writable);
    assert!(!ok && out.contains("written by other users"), "{out}");
}
