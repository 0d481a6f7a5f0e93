//! Every page: the home page's live model status and links, and on a phone-sized screen, no
//! horizontal scrolling, a label for every control, alt text on every image, a skip link as
//! the first Tab stop, and no errors in the browser console.

use fantoccini::key::Key;

use crate::harness::{Page, TestResult, run, run_with_models};
use crate::{ensure, fail};

// `/models/shapes` is the try page of the Keras fixture `models::import` installs, with its
// extra input's field rendered from the model card.
const PAGES: &[&str] = &["/", "/analyze", "/analyses", "/search", "/products", "/models", "/models/shapes"];

/// Problems a person would meet on the page shown now, found by looking at its DOM.
const AUDIT: &str = r#"
const problems = [];
for (const el of document.querySelectorAll('input, select, textarea, button')) {
  if (el.type === 'hidden') continue;
  const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim());
  if (!named) problems.push(`unlabelled ${el.tagName.toLowerCase()}#${el.id}`);
}
for (const img of document.querySelectorAll('img')) {
  if (!img.hasAttribute('alt')) problems.push(`image without alt: ${img.getAttribute('src')}`);
}
const width = document.documentElement.scrollWidth;
if (width > window.innerWidth) problems.push(`page is ${width}px wide on a ${window.innerWidth}px screen`);
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
if (getComputedStyle(document.querySelector('.site-header')).display !== 'flex') problems.push('stylesheet not applied');
return problems;
"#;

async fn audit(page: &Page, path: &str) -> TestResult {
    page.goto(path).await?;
    // Let the page's script fetch and render its data before looking.
    let settled = "const s = document.querySelector('.status'); return !s || !s.classList.contains('busy')";
    page.wait_for("the page to settle", settled, vec![]).await?;
    let problems = page.client().execute(AUDIT, vec![]).await?;
    if problems.as_array().is_some_and(|p| !p.is_empty()) {
        fail!("{path}: {problems}");
    }

    // The first Tab lands on the skip link, and following it moves focus to the content.
    page.client().active_element().await?.send_keys(&Key::Tab).await?;
    let focused = "return document.activeElement && document.activeElement.className";
    ensure!(
        page.client().execute(focused, vec![]).await? == "skip-link",
        "{path}: first Tab stop is not the skip link"
    );
    page.client().active_element().await?.send_keys(&Key::Enter).await?;
    page.wait_for("focus on the main content", "return document.activeElement.id === 'main'", vec![]).await?;

    let errors: Vec<String> = page.console().await?.into_iter().filter(|l| l.starts_with("SEVERE")).collect();
    ensure!(errors.is_empty(), "{path}: browser console errors: {errors:?}");
    page.checkpoint(&format!("phone{}", path.replace('/', "-"))).await;
    Ok(())
}

#[test]
fn the_home_page_shows_live_model_status_and_leads_to_every_tool() {
    run("home", |ctx| async move {
        let page = ctx.page;
        page.goto("/").await?;
        page.wait_for(
            "the server to be ready",
            "return document.querySelector('#readiness').innerText.startsWith('Ready')",
            vec![],
        )
        .await?;
        let states = page.texts("#models tbody td:nth-child(3)").await?;
        ensure!(!states.is_empty(), "no models listed");
        ensure!(states.iter().all(|s| s.starts_with("Ready")), "models not all ready: {states:?}");
        page.checkpoint("home").await;

        page.click("a.button[href='/analyze']").await?;
        page.wait_for("/analyze", "return location.pathname === '/analyze'", vec![]).await?;
        page.goto("/").await?;
        page.click("a.button[href='/search']").await?;
        page.wait_for("/search", "return location.pathname === '/search'", vec![]).await?;
        page.goto("/").await?;
        page.click("a.button[href='/models']").await?;
        page.wait_for("/models", "return location.pathname === '/models'", vec![]).await?;
        Ok(())
    })
}

#[test]
fn every_page_fits_a_phone_is_labelled_and_keyboard_reachable() {
    run_with_models("phone_a11y", crate::models::import, |ctx| async move {
        let page = ctx.page;
        page.client().set_window_size(390, 844).await?;
        for path in PAGES {
            audit(&page, path).await?;
        }
        Ok(())
    })
}
