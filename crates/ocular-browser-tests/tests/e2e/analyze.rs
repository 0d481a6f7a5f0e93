//! /analyze, /analyses and /analyses/{id}: a photo goes in, a prediction with a heatmap comes
//! out, a non-skin photo is refused with its reason, and stored analyses can be opened again
//! and deleted — by the browser that made them, and by no other.

use fantoccini::key::Key;

use crate::harness::{Page, TestResult, run};
use crate::{ensure, fail};

const COFFEE: &str = "fixtures/keras/sklesion/coffee.png";
const ASTRONAUT: &str = "fixtures/keras/sklesion/astronaut.png";

/// "62.1%" -> 62.1
fn percent(s: &str) -> TestResult<f64> {
    Ok(s.trim().trim_end_matches('%').parse().map_err(|e| format!("{s:?} is not a percentage: {e}"))?)
}

/// Checks everything a rendered result must show; returns the top class name.
async fn check_result(page: &Page) -> TestResult<String> {
    page.visible("#result").await?;
    let name = page.text("#top-name").await?;
    ensure!(!name.is_empty() && name != "?", "no top class shown");
    let top = percent(&page.text("#top-prob").await?)?;
    ensure!((0.0..=100.0).contains(&top), "top probability {top} out of range");

    let labels = page.texts(".bars li .bar-label").await?;
    let values = page.texts(".bars li .bar-value").await?;
    ensure!(labels.len() == 7 && values.len() == 7, "expected 7 class bars, got {labels:?}");
    let values: Vec<f64> = values.iter().map(|v| percent(v)).collect::<TestResult<_>>()?;
    let sum: f64 = values.iter().sum();
    ensure!((sum - 100.0).abs() < 0.5, "class probabilities add up to {sum}%, not 100%");
    ensure!(page.texts(".bars li.is-top .bar-label").await? == vec![name.clone()], "top class not marked in the bars");
    ensure!(page.texts("h4.group").await?.len() == 2, "benign/malignant groups missing");
    let malignant = percent(&page.text("#malignant-prob").await?)?;
    ensure!((0.0..=100.0).contains(&malignant), "malignant probability {malignant} out of range");

    let (w, h) = page.image_loaded("#heatmap").await?;
    ensure!(w >= 32 && h >= 32, "heatmap is only {w}x{h}");
    page.image_loaded("#photo").await?;
    ensure!(
        page.text("#disclaimer").await?.to_lowercase().contains("diagnosis"),
        "the not-a-diagnosis notice is missing"
    );
    Ok(name)
}

/// The slider fades the heatmap out to the original photo, by keyboard, and the toggle brings
/// it back.
async fn check_compare_control(page: &Page) -> TestResult {
    let opacity = "return getComputedStyle(document.querySelector('#heatmap')).opacity";
    page.visible("#heatmap-opacity").await?.send_keys(&Key::Home).await?;
    page.wait_for("the heatmap to fade out", &format!("{opacity} === '0'"), vec![]).await?;
    ensure!(page.text("#heatmap-toggle").await? == "Show heatmap", "toggle does not offer the heatmap back");
    page.click("#heatmap-toggle").await?;
    page.wait_for("the heatmap to come back", &format!("{opacity} === '1'"), vec![]).await?;
    Ok(())
}

#[test]
fn a_photo_that_is_not_skin_is_refused_with_its_reason_and_can_be_analysed_anyway() {
    run("analyze_refusal", |ctx| async move {
        let page = ctx.page;
        page.goto("/analyze").await?;
        // This one arrives by drag-and-drop; the other test uses the file chooser.
        let highlighted = page.drop_file("#analyze-form .dropzone", &ctx.root.join(COFFEE)).await?;
        ensure!(highlighted, "the drop zone is not highlighted while a file is over it");
        page.image_loaded("#analyze-form .preview").await?;
        let chosen = page.client().execute("return document.querySelector('#image').files[0].name", vec![]).await?;
        ensure!(chosen == "coffee.png", "the dropped file is not the chosen photo: {chosen}");
        page.click("#analyze-submit").await?;

        page.visible("#refusal").await?;
        ensure!(page.text("#refusal h2").await?.contains("does not look like"), "no refusal heading");
        ensure!(!page.text("#refusal-reason").await?.is_empty(), "the refusal gives no reason");
        ensure!(page.texts("#result:not([hidden])").await?.is_empty(), "a result is shown for a refused photo");
        page.checkpoint("refused").await;

        page.click("#force").await?;
        check_result(&page).await?;
        page.visible("#forced-note").await?;
        ensure!(page.texts("#refusal:not([hidden])").await?.is_empty(), "the refusal is still shown");
        check_compare_control(&page).await?;
        page.checkpoint("forced-result").await;

        // The result reads on a phone: one column, nothing wider than the screen.
        page.client().set_window_size(390, 844).await?;
        let overflow = "return document.documentElement.scrollWidth > window.innerWidth";
        ensure!(page.client().execute(overflow, vec![]).await? == false, "the result is wider than a phone screen");
        page.checkpoint("phone-result").await;
        Ok(())
    })
}

#[test]
fn a_photo_is_analysed_with_a_heatmap_stored_listed_reopened_and_deleted() {
    run("analyze_store", |ctx| async move {
        let page = ctx.page;
        page.goto("/analyze").await?;
        page.choose_file("#image", &ctx.root.join(ASTRONAUT)).await?;
        page.fill("#age", "45").await?;
        page.select("#sex", "female").await?;
        page.select("#location", "head-or-neck").await?;
        page.click("#analyze-submit").await?;

        // The skin check may or may not accept this face; either way a person gets a result.
        let shown = "return !document.querySelector('#result').hidden ? 'result' \
                     : !document.querySelector('#refusal').hidden ? 'refusal' : null";
        if page.wait_for("a result or a refusal", shown, vec![]).await? == "refusal" {
            page.click("#force").await?;
        }
        let name = check_result(&page).await?;
        page.checkpoint("result").await;

        // The permanent link opens the stored analysis, rendered the same way.
        page.click("#status a").await?;
        page.wait_for("the analysis page", "return location.pathname.startsWith('/analyses/')", vec![]).await?;
        let id = page.path().await?.trim_start_matches("/analyses/").to_string();
        ensure!(check_result(&page).await? == name, "the stored analysis shows another top class");
        page.checkpoint("stored").await;

        // Private: another browser (one without this one's list of tokens) neither lists it
        // nor opens it by its address, and sees only "not found".
        let saved = page
            .client()
            .execute(
                "const v = localStorage.getItem('ocular.analyses'); localStorage.removeItem('ocular.analyses'); return v",
                vec![],
            )
            .await?;
        ensure!(saved.is_string(), "the analysis was not remembered in this browser: {saved}");
        page.goto("/analyses").await?;
        ensure!(page.texts("#analyses li").await?.is_empty(), "a browser without the token lists the analysis");
        page.goto(&format!("/analyses/{id}")).await?;
        let refused = "return document.querySelector('#status').classList.contains('error')";
        page.wait_for("the analysis to be refused", refused, vec![]).await?;
        ensure!(page.text("#status").await?.contains("not found"), "no 'not found' for a stranger");
        ensure!(page.texts("#result:not([hidden])").await?.is_empty(), "a stranger sees the result");
        page.client().execute("localStorage.setItem('ocular.analyses', arguments[0])", vec![saved]).await?;

        // It is listed with its thumbnail, and the list leads back to it.
        page.goto("/analyses").await?;
        let item = format!("#analyses li[data-id='{id}']");
        page.visible(&item).await?;
        page.image_loaded(&format!("{item} img")).await?;
        ensure!(page.text(&format!("{item} strong")).await? == name, "the list shows another class");
        page.checkpoint("list").await;
        page.click(&format!("{item} a")).await?;
        page.visible("#delete").await?;

        // Cancelling keeps it; confirming deletes it and returns to the list.
        page.click("#delete").await?;
        page.click("#confirm-delete button[value=cancel]").await?;
        ensure!(page.path().await? == format!("/analyses/{id}"), "cancel navigated away");
        page.click("#delete").await?;
        page.click("#confirm-delete button[value=confirm]").await?;
        page.wait_for("the list after deleting", "return location.pathname === '/analyses'", vec![]).await?;
        let loaded = "const s = document.querySelector('#status'); \
                      return s.textContent !== '' && !s.classList.contains('busy')";
        page.wait_for("the list to load", loaded, vec![]).await?;
        if !page.texts(&item).await?.is_empty() {
            fail!("the deleted analysis is still listed");
        }
        Ok(())
    })
}
