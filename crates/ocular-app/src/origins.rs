//! `OCULAR_CORS_ORIGINS`, parsed and validated once for `Config::validate`; the server's CORS
//! layer (`ocular_server::cors`) is built from the same parse. A browser sends
//! `scheme://host[:port]` exactly, so an entry with a path or a trailing slash would silently
//! never match, and is refused with the reason instead.

use http::uri::Authority;

/// The configured origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    List(Vec<String>),
}

/// Parses `OCULAR_CORS_ORIGINS`: empty is `None` (no CORS), `*` alone, or a comma-separated
/// list of `http(s)://host[:port]`.
pub fn parse_origins(raw: &str) -> Result<Option<Origins>, String> {
    let entries: Vec<&str> = raw.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Ok(None);
    }
    if entries.contains(&"*") {
        if entries.len() > 1 {
            return Err("`*` allows every origin and cannot be combined with a list".into());
        }
        return Ok(Some(Origins::Any));
    }
    entries.into_iter().map(origin).collect::<Result<Vec<_>, _>>().map(|list| Some(Origins::List(list)))
}

fn origin(entry: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{entry:?} is not an origin ({why}); write it as https://host[:port]");
    let lower = entry.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| bad("the scheme must be http or https"))?;
    if rest.contains(['/', '?', '#']) {
        return Err(bad("an origin has no path, not even a trailing slash"));
    }
    if rest.contains('@') {
        return Err(bad("user information is not part of an origin"));
    }
    if rest.is_empty() || rest.parse::<Authority>().is_err() {
        return Err(bad("no valid host"));
    }
    // Browsers send scheme and host in lower case; compare the same way.
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_invalid_ones_say_why() {
        assert_eq!(parse_origins(""), Ok(None));
        assert_eq!(parse_origins(" , "), Ok(None));
        assert_eq!(parse_origins("*"), Ok(Some(Origins::Any)));
        assert_eq!(
            parse_origins("https://Shop.Example.com, http://localhost:3000"),
            Ok(Some(Origins::List(vec!["https://shop.example.com".into(), "http://localhost:3000".into()])))
        );
        for (bad, why) in [
            ("https://shop.example.com/", "trailing slash"),
            ("https://shop.example.com/app", "no path"),
            ("shop.example.com", "scheme"),
            ("ftp://shop.example.com", "scheme"),
            ("https://user@shop.example.com", "user information"),
            ("*, https://a.example", "cannot be combined"),
        ] {
            let err = parse_origins(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
