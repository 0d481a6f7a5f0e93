//! Photos for bulk work (import, reindex): from local files, from URLs through ocular-fetch
//! (the one module that fetches, with its SSRF guard), or from the store.
//!
//! Bulk work is synchronous, on the CLI's main thread; URL fetches are async, so the loader
//! carries a runtime handle and blocks on it. Never call it from inside an async task.

use std::io::Read;
use std::path::Path;

use ocular_fetch::Fetcher;
use ocular_image::{ImageError, Limits};

use crate::error::SearchError;
use crate::import::ImageRef;
use crate::ingest::ImageInput;

pub struct ImageLoader {
    limits: Limits,
    fetch: Option<(Fetcher, tokio::runtime::Handle)>,
    /// Whether local paths may be read (never for a catalog uploaded to a server).
    files: bool,
}

impl ImageLoader {
    /// A loader for local files only; URLs are refused.
    pub fn local(limits: Limits) -> Self {
        Self { limits, fetch: None, files: true }
    }

    /// A loader that also fetches URLs with `fetcher`, blocking on `handle`.
    pub fn with_fetcher(limits: Limits, fetcher: Fetcher, handle: tokio::runtime::Handle) -> Self {
        Self { limits, fetch: Some((fetcher, handle)), files: true }
    }

    /// A loader for a catalog uploaded to a server: URLs through `fetch` (refused without it),
    /// never local paths, which would read the server's own files into product photos.
    pub fn urls_only(limits: Limits, fetch: Option<(Fetcher, tokio::runtime::Handle)>) -> Self {
        Self { limits, fetch, files: false }
    }

    pub fn load(&self, image: &ImageRef) -> Result<ImageInput, SearchError> {
        match image {
            ImageRef::Path(_) if !self.files => Err(SearchError::invalid(
                "image",
                "a photo of an uploaded catalog must be an http(s) URL, not a path on the server",
            )),
            ImageRef::Path(path) => Ok(ImageInput { bytes: self.read_file(path)?, source_url: None }),
            ImageRef::Url(url) => {
                let (fetcher, handle) = self.fetch.as_ref().ok_or_else(|| {
                    SearchError::invalid("image", "fetching image URLs is not enabled for this command")
                })?;
                let fetched = handle.block_on(fetcher.fetch_image(url))?;
                Ok(ImageInput { bytes: fetched.bytes.to_vec(), source_url: Some(url.clone()) })
            }
        }
    }

    /// Reads at most `max_bytes + 1` bytes, so a huge or endless file (a FIFO, /dev/zero) is
    /// refused without reading it all.
    fn read_file(&self, path: &Path) -> Result<Vec<u8>, SearchError> {
        let io = |source| SearchError::ImageFile { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let cap = self.limits.max_bytes as u64 + 1;
        let mut bytes = Vec::new();
        file.take(cap).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() > self.limits.max_bytes {
            return Err(ImageError::TooLarge { bytes: bytes.len(), max: self.limits.max_bytes }.into());
        }
        Ok(bytes)
    }
}
