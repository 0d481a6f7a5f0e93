//! Lifecycle: preload, lazy single-flight, failure with back-off and recovery.

use std::time::Duration;

use ocular_models::{ModelError, ModelState, Registry, runtime};

use crate::common::{models_dir_with_fixture, options};

#[tokio::test]
async fn discover_loads_nothing_and_preload_makes_ready() {
    let dir = models_dir_with_fixture();
    let registry = Registry::discover(options(dir.path())).expect("discover");
    let st = &registry.statuses()[0];
    assert_eq!((st.name.as_str(), st.state, st.loads), ("fixture", ModelState::NotLoaded, 0));
    assert!(!registry.all_ready());

    let errors = registry.preload_all().await;
    assert!(errors.is_empty(), "{errors:?}");
    let st = &registry.statuses()[0];
    assert_eq!(st.state, ModelState::Ready);
    assert!(st.bytes > 0 && st.load_ms.is_some());
    assert!(registry.all_ready());

    let model = registry.fixture.as_ref().expect("fixture slot").get().await.expect("model");
    let y = model.run(&[0.5, -1.0, 2.0, 0.25]).expect("inference");
    assert_eq!(y.len(), 3);
    assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-5, "softmax output sums to one: {y:?}");
    assert!(model.run(&[1.0]).is_err(), "wrong width is an error, not a panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_first_requests_cause_one_load() {
    let dir = models_dir_with_fixture();
    let registry = Registry::discover(options(dir.path())).expect("discover");
    let slot = registry.fixture.clone().expect("fixture slot");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let slot = slot.clone();
            tokio::spawn(async move { slot.get().await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("load");
    }
    assert_eq!(registry.statuses()[0].loads, 1);
}

#[tokio::test]
async fn failed_load_backs_off_then_recovers() {
    let dir = models_dir_with_fixture();
    let onnx = dir.path().join("fixture/model.onnx");
    let good = std::fs::read(&onnx).expect("read");
    std::fs::write(&onnx, b"not an onnx model").expect("corrupt");

    let registry = Registry::discover(options(dir.path())).expect("discover");
    let slot = registry.fixture.clone().expect("slot");
    let first = slot.get().await.map(|_| ());
    assert!(matches!(first, Err(ModelError::Ort { .. })), "{first:?}");
    let st = &registry.statuses()[0];
    assert_eq!(st.state, ModelState::Failed);
    assert!(st.error.as_deref().is_some_and(|e| e.contains("fixture")), "{st:?}");

    // Within the back-off window the error is answered without another load attempt.
    let second = slot.get().await.map(|_| ());
    assert!(matches!(second, Err(ModelError::LoadFailed { .. })), "{second:?}");
    assert_eq!(registry.statuses()[0].loads, 1);

    std::fs::write(&onnx, good).expect("repair");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    slot.get().await.expect("recovers after back-off");
    let st = &registry.statuses()[0];
    assert_eq!((st.state, st.loads, st.error.clone()), (ModelState::Ready, 2, None));
}

#[test]
fn missing_runtime_library_is_a_clear_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    let missing = empty.path().join("nope.so");
    // ORT_DYLIB_PATH may be set by the developer; only the explicit path and the dir matter here.
    let err = runtime::locate(Some(&missing), empty.path());
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        let msg = err.expect_err("nothing to find").to_string();
        assert!(msg.contains("ocular models fetch") && msg.contains("nope.so"), "{msg}");
    }
}

#[tokio::test]
async fn enabled_list_filters_models() {
    let dir = models_dir_with_fixture();
    let mut opts = options(dir.path());
    opts.enabled = Some(vec!["something-else".into()]);
    let registry = Registry::discover(opts).expect("discover");
    assert!(registry.is_empty());
}

/// Idle unload: a model nobody used for the idle time and nobody holds is dropped, readiness
/// does not flap, and the next request loads it again through the same single flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_models_unload_and_reload_on_the_next_request() {
    let dir = models_dir_with_fixture();
    let registry = Registry::discover(options(dir.path())).expect("discover");
    assert!(registry.preload_all().await.is_empty());
    let slot = registry.fixture.clone().expect("fixture slot");
    // Just used: not idle for a minute.
    assert!(registry.unload_idle(Duration::from_secs(60)).is_empty());

    // Held by a request: dropping it would free nothing and race the request.
    let held = slot.get().await.expect("model");
    assert!(registry.unload_idle(Duration::ZERO).is_empty());
    drop(held);
    assert_eq!(registry.unload_idle(Duration::ZERO), vec!["fixture".to_string()]);
    let st = &registry.statuses()[0];
    assert_eq!((st.state, st.loads, st.unloads), (ModelState::Unloaded, 1, 1));
    assert!(slot.loaded().is_none());
    assert!(registry.all_ready(), "an idle-unloaded model still counts as ready");

    // Fifty requests at once after the unload: one reload, all answered.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let slot = slot.clone();
            tokio::spawn(async move { slot.get().await.and_then(|m| m.run(&[0.5, -1.0, 2.0, 0.25])).map(|y| y.len()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("inference"), 3);
    }
    let st = &registry.statuses()[0];
    assert_eq!((st.state, st.loads, st.unloads), (ModelState::Ready, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_load_reserves_its_memory_first_and_waits_for_room() {
    // Issue 16, finding #14: a load waits until the budget has its room (here: more than the
    // budget can ever give, so all of it, i.e. until no request holds memory), loads, and
    // gives the room back.
    use std::sync::Arc;

    use ocular_models::{LimitSource, MemoryBudget};

    let dir = models_dir_with_fixture();
    let registry = Registry::discover(options(dir.path())).expect("discover");
    let slot = registry.fixture.clone().expect("fixture slot");
    let cost = slot.load_cost();
    assert!(cost > registry.statuses()[0].bytes, "a load costs more than its weights: {cost}");

    let budget = MemoryBudget::new(Some(1000 + cost / 2), LimitSource::Config, Arc::new(|| Some(1000)));
    registry.limit_loads(budget.clone());
    let request = budget.reserve(cost / 4, Duration::ZERO).await.expect("a request holds some room");
    let loading = tokio::spawn({
        let slot = slot.clone();
        async move { slot.get().await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(registry.statuses()[0].loads, 0, "the load waits for the request's memory");
    assert_eq!(budget.status().reserved_bytes, cost / 4, "and has reserved nothing meanwhile");
    drop(request);
    loading.await.expect("join").expect("loads once the request is done");
    let st = &registry.statuses()[0];
    assert_eq!((st.state, st.loads), (ModelState::Ready, 1));
    assert_eq!(budget.status().reserved_bytes, 0, "the load's reservation ends with the load");
}

#[test]
fn a_load_costs_the_one_graph_it_opens_not_every_precision_on_disk() {
    // A model folder holds one graph per precision (fp32, int8, int8 for VNNI) and a load opens
    // one: counting them all put sklesion's load cost above a 512 MiB cgroup's whole budget.
    use sha2::Digest;

    let dir = models_dir_with_fixture();
    let model = dir.path().join("fixture");
    let one_graph = {
        let registry = Registry::discover(options(dir.path())).expect("discover");
        registry.fixture.clone().expect("fixture slot").load_cost()
    };
    let graph = std::fs::read(model.join("model.onnx")).expect("graph");
    std::fs::write(model.join("model.int8.onnx"), &graph).expect("second graph");
    let path = model.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["files"].as_array_mut().unwrap().push(serde_json::json!({
        "path": "model.int8.onnx",
        "sha256": hex::encode(sha2::Sha256::digest(&graph)),
        "bytes": graph.len(),
    }));
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();

    let registry = Registry::discover(options(dir.path())).expect("discover");
    let slot = registry.fixture.clone().expect("fixture slot");
    assert_eq!(registry.statuses()[0].bytes, 2 * graph.len() as u64, "both graphs are on disk");
    assert_eq!(slot.load_cost(), one_graph, "but a load reads one of them");
}
