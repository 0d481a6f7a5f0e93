//! The one place where ocular fetches URLs.
//!
//! Search by URL, product image URLs and bulk imports all download images from addresses that
//! strangers choose. Done naively that is server-side request forgery: a URL (or a redirect,
//! or a DNS answer) pointing at `169.254.169.254` hands out cloud credentials, one pointing
//! at `127.0.0.1` reaches admin ports, and a 10 GB or never-ending body takes the 512 MB
//! process down. [`Fetcher::fetch_image`] is the only way ocular downloads anything, and it
//!
//! - accepts `http`/`https` only, without `user:pass@` credentials;
//! - reads hosts the way URL parsers do (WHATWG, via the `url` crate), so `2130706433`,
//!   `0x7f.1`, `0177.0.0.1` and `127.1` are all checked as 127.0.0.1;
//! - resolves a name once, refuses the hop if *any* address is in a special-purpose range
//!   ([`classify()`]: loopback, private, CGNAT, link-local, multicast, reserved, documentation,
//!   ULA, and IPv6 forms embedding such an IPv4), unless the [`AllowList`] covers it;
//! - connects only to those checked addresses (no second resolution, no proxy), with the
//!   URL's host as `Host` header and TLS server name;
//! - re-checks every redirect hop, up to `max_redirects`;
//! - bounds time (connect and total deadlines), memory (byte cap while streaming) and
//!   politeness (per-host concurrency), and accepts only images.
//!
//! Refusals make no connection. Every error has a stable [`FetchError::code`].
//!
//! ```no_run
//! use ocular_fetch::{AllowList, FetchPolicy, Fetcher};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = FetchPolicy { allow: AllowList::parse("images.internal,10.20.0.0/16")?, ..FetchPolicy::default() };
//! let fetcher = Fetcher::new(policy)?;
//! let image = fetcher.fetch_image("https://example.com/shoe.jpg").await?;
//! println!("{} bytes of {:?} from {}", image.bytes.len(), image.content_type, image.final_url);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
// Outside tests a panic is a bug report, not error handling (docs/TESTING.md, Lint policy).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod allow;
pub mod classify;
mod connect;
mod content;
mod error;
mod fetcher;
mod host_limit;
mod resolve;
mod target;

pub use allow::AllowList;
pub use classify::{BlockedRange, classify};
pub use content::sniff_image;
pub use error::{AllowListError, BuildError, FetchError};
pub use fetcher::{FetchPolicy, Fetched, Fetcher};
pub use resolve::{Resolve, ResolveFuture, StaticResolver, SystemResolver};
