//! /products: add a product with a photo or an image address, see it in the catalog and in
//! search, page and filter the catalog, and delete with a confirmation.

use crate::catalog;
use crate::harness::{Page, TestResult, http, run};
use crate::{ensure, fail};

/// Waits for the catalog list to show after a load or a change.
async fn wait_list(page: &Page) -> TestResult {
    page.wait_for("the catalog list", "return document.querySelectorAll('#products li').length > 0", vec![]).await?;
    Ok(())
}

async fn wait_status(page: &Page, starts: &str) -> TestResult<String> {
    let script = "const s = document.querySelector('#status'); \
                  return s.classList.contains('error') ? 'error: ' + s.innerText \
                  : s.innerText.startsWith(arguments[0]) ? s.innerText : null";
    let text = page.wait_for(&format!("status {starts:?}"), script, vec![starts.into()]).await?;
    let text = text.as_str().unwrap_or_default().to_string();
    if text.starts_with("error: ") {
        fail!("the page reports {text}");
    }
    Ok(text)
}

#[test]
fn a_product_is_added_with_a_photo_found_by_search_and_deleted_after_confirmation() {
    run("products_add_delete", |ctx| async move {
        let page = ctx.page;
        page.goto("/products").await?;
        wait_list(&page).await?;

        // A title that looks like markup must be shown as the characters it is.
        let title = "Stoneware mug <b>handmade</b>";
        page.fill("#p-id", "e2e-mug").await?;
        page.fill("#p-title", title).await?;
        page.fill("#p-category", "Kitchen").await?;
        page.fill("#p-price", "12.50").await?;
        page.fill("#p-currency", "eur").await?;
        page.fill("#p-description", "A glazed stoneware mug for tea or coffee.").await?;
        page.choose_file("#p-image", &ctx.root.join("crates/ocular-image/tests/data/coffee.png")).await?;
        page.image_loaded("#add-form .preview").await?;
        page.click("#add-submit").await?;
        wait_status(&page, "Added").await?;

        let card = "#products li[data-id='e2e-mug']";
        page.visible(card).await?;
        ensure!(page.text(&format!("{card} .product-title")).await? == title, "title not shown literally");
        let markup =
            page.client().execute("return document.querySelector(arguments[0] + ' b') !== null", vec![card.into()]);
        ensure!(markup.await? == false, "the title was parsed as markup");
        ensure!(page.text(&format!("{card} .price")).await?.contains("12.50"), "price not shown");
        page.image_loaded(&format!("{card} img")).await?;
        page.checkpoint("added").await;

        // The next search sees it, without a restart.
        page.goto("/search").await?;
        page.click("label[for=mode-text]").await?;
        page.fill("#query", "stoneware mug").await?;
        page.click("#search-submit").await?;
        let first = page.text("#results li:first-child .product-title").await?;
        ensure!(first == title, "search for the new product found {first:?} first");

        // Cancel keeps it; confirm deletes it.
        page.goto("/products").await?;
        page.click(&format!("{card} button.danger")).await?;
        page.visible("#confirm-delete").await?;
        ensure!(page.text("#confirm-delete-name").await? == title, "the dialog names another product");
        page.checkpoint("confirm").await;
        page.click("#confirm-delete button[value=cancel]").await?;
        page.visible(card).await?;
        page.click(&format!("{card} button.danger")).await?;
        page.click("#confirm-delete-yes").await?;
        wait_status(&page, "Deleted").await?;
        ensure!(page.texts(card).await?.is_empty(), "the deleted product is still listed");
        let gone = http::get(&ctx.base, "/api/v1/products/e2e-mug")?;
        ensure!(gone.status == 404, "the API still has the product ({})", gone.status);
        Ok(())
    })
}

#[test]
fn a_product_is_added_by_image_address_and_the_catalog_pages_and_filters() {
    run("products_url_paging", |ctx| async move {
        catalog::seed(&ctx)?;
        let page = ctx.page;
        let images = http::serve_file(&ctx.root.join("crates/ocular-image/tests/data/china.jpg"))?;
        page.goto("/products").await?;
        wait_list(&page).await?;
        page.fill("#p-id", "e2e-by-url").await?;
        page.fill("#p-title", "Temple by address").await?;
        page.fill("#p-category", "Decor").await?;
        page.click("label[for=src-url]").await?;
        page.fill("#p-image-url", &format!("{images}/temple.jpg")).await?;
        page.click("#add-submit").await?;
        wait_status(&page, "Added").await?;
        let card = "#products li[data-id='e2e-by-url']";
        page.image_loaded(&format!("{card} img")).await?;

        // Five more make 14 products: a full page of 12 and a second page of 2.
        for i in 1..=5 {
            let fields =
                [("id", format!("extra-{i}")), ("title", format!("Extra product {i}")), ("category", "Extras".into())];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let photo = ctx.root.join("crates/ocular-image/tests/data/china_draft.png");
            let (content_type, body) = http::multipart(&fields, ("image", &photo))?;
            let resp = http::request(&ctx.base, "POST", "/api/v1/products", Some((&content_type, &body)))?;
            ensure!(resp.status == 201, "adding extra-{i}: {}", resp.status);
        }
        let total = catalog::PRODUCTS.len() + 1 + 5;
        page.goto("/products").await?;
        wait_list(&page).await?;
        ensure!(page.texts("#products li").await?.len() == 12, "first page is not 12 products");
        page.click("#next").await?;
        page.wait_for("page 2", "return location.search.includes('offset=12')", vec![]).await?;
        wait_list(&page).await?;
        ensure!(page.texts("#products li").await?.len() == total - 12, "second page has the wrong count");
        page.visible("#prev").await?;
        page.checkpoint("page-2").await;

        page.fill("#filter-category", "Decor").await?;
        page.click("#filter-form button").await?;
        page.wait_for("the filtered list", "return location.search.includes('category=Decor')", vec![]).await?;
        let expected = catalog::PRODUCTS.iter().filter(|p| p.category == "Decor").count() + 1;
        let count = "return document.querySelectorAll('#products li[data-id]').length === arguments[0]";
        page.wait_for(&format!("{expected} Decor products"), count, vec![expected.into()]).await?;
        Ok(())
    })
}
