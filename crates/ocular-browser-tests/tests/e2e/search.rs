//! /search: by photo, by image address and by text, over a small catalog of real photos, with
//! filters and paging. The expectations are the product's own: the motorcycle seen from the
//! right finds the same motorcycle seen from the left; "a cup of coffee" finds the coffee.

use crate::catalog::{self, COFFEE, MOTORCYCLE};
use crate::harness::{Page, TestResult, http, run};
use crate::{ensure, fail};

const MOTORCYCLE_RIGHT: &str = "fixtures/reference/effnet_motorcycle_right.png";

/// One result card as shown.
#[derive(Debug)]
struct Card {
    title: String,
    category: String,
}

/// Clicks `button` and waits for the search it starts to finish; returns the cards shown.
/// Cards of the previous search are marked first, so an old result is never taken for new.
async fn search_with(page: &Page, button: &str) -> TestResult<Vec<Card>> {
    page.client()
        .execute("document.querySelectorAll('#results li').forEach((li) => { li.dataset.stale = '1'; })", vec![])
        .await?;
    page.click(button).await?;
    let done = "const s = document.querySelector('#status'); \
                if (s.classList.contains('error')) return 'error: ' + s.innerText; \
                return s.classList.contains('ok') && !document.querySelector('#results li[data-stale]') ? 'ok' : null";
    let outcome = page.wait_for("search results", done, vec![]).await?;
    if outcome != "ok" {
        fail!("the search failed: {outcome}");
    }
    let titles = page.texts("#results li .product-title").await?;
    let script = "return [...document.querySelectorAll('#results li')].map((li) => \
                  (li.querySelector('.category') || {}).innerText || '')";
    let categories = page.client().execute(script, vec![]).await?;
    let categories = categories.as_array().cloned().unwrap_or_default();
    Ok(titles
        .into_iter()
        .zip(categories)
        .map(|(title, c)| Card { title, category: c.as_str().unwrap_or_default().trim().to_string() })
        .collect())
}

async fn first_title(cards: &[Card]) -> TestResult<&str> {
    match cards.first() {
        Some(c) => Ok(&c.title),
        None => fail!("no results"),
    }
}

#[test]
fn a_photo_search_finds_the_motorcycle_seen_from_the_other_side_with_filters_and_paging() {
    run("search_photo", |ctx| async move {
        catalog::seed(&ctx)?;
        let page = ctx.page;
        page.goto("/search").await?;
        page.choose_file("#query-image", &ctx.root.join(MOTORCYCLE_RIGHT)).await?;
        page.image_loaded("#search-form .preview").await?;
        let cards = search_with(&page, "#search-submit").await?;
        ensure!(first_title(&cards).await? == MOTORCYCLE, "first result is not the motorcycle: {cards:?}");
        page.image_loaded("#results li:first-child img").await?;
        ensure!(page.text("#results li:first-child .score").await?.starts_with("Score "), "no score shown");
        page.checkpoint("photo-results").await;

        // Every product, six per page: two pages, and back.
        page.click("details.filters summary").await?;
        page.fill("#threshold", "-1").await?;
        page.select("#top-k", "6").await?;
        let first = search_with(&page, "#search-submit").await?;
        ensure!(first.len() == 6, "expected a full first page of 6, got {}", first.len());
        let second = search_with(&page, "#next").await?;
        ensure!(second.len() == catalog::PRODUCTS.len() - 6, "second page: {second:?}");
        ensure!(page.text("#results-summary").await?.starts_with("Results 7–"), "second page is not numbered from 7");
        ensure!(page.texts("#next:not([hidden])").await?.is_empty(), "a next page is offered after the last");
        let back = search_with(&page, "#prev").await?;
        ensure!(back.len() == 6 && back[0].title == first[0].title, "previous page differs from the first");

        // A category filter keeps only that category.
        page.fill("#category", "Decor").await?;
        page.select("#top-k", "12").await?;
        let decor = search_with(&page, "#search-submit").await?;
        let expected = catalog::PRODUCTS.iter().filter(|p| p.category == "Decor").count();
        ensure!(decor.len() == expected, "category filter: {decor:?}");
        ensure!(decor.iter().all(|c| c.category == "Decor"), "category filter leaked: {decor:?}");

        // A price ceiling keeps only cheaper products.
        page.fill("#category", "").await?;
        page.fill("#max-price", "10").await?;
        let cheap = search_with(&page, "#search-submit").await?;
        let expected = catalog::PRODUCTS.iter().filter(|p| p.price.parse::<f64>().is_ok_and(|v| v <= 10.0)).count();
        ensure!(cheap.len() == expected, "price filter: {cheap:?}");
        page.checkpoint("filtered").await;
        Ok(())
    })
}

#[test]
fn a_text_search_finds_the_coffee_and_an_image_address_finds_the_motorcycle() {
    run("search_text_url", |ctx| async move {
        catalog::seed(&ctx)?;
        let page = ctx.page;
        page.goto("/search").await?;

        page.click("label[for=mode-text]").await?;
        page.fill("#query", "a cup of coffee").await?;
        let cards = search_with(&page, "#search-submit").await?;
        ensure!(first_title(&cards).await? == COFFEE, "first result is not the coffee: {cards:?}");
        page.checkpoint("text-results").await;

        // The server fetches the address itself; here it is the test's own loopback listener.
        let images = http::serve_file(&ctx.root.join(MOTORCYCLE_RIGHT))?;
        page.click("label[for=mode-url]").await?;
        page.fill("#image-url", &format!("{images}/motorcycle_right.png")).await?;
        let cards = search_with(&page, "#search-submit").await?;
        ensure!(first_title(&cards).await? == MOTORCYCLE, "first result is not the motorcycle: {cards:?}");
        page.checkpoint("url-results").await;
        Ok(())
    })
}
