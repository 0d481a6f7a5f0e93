//! The API key from a file (`OCULAR_API_KEY_FILE`), for deployments that keep secrets out of
//! the environment: a variable is visible to every process of the same user through
//! `/proc/PID/environ`, is copied into crash reports and child processes, and `--api-key` shows
//! in `ps`. A file can be a container secret mounted read-only, readable by the service alone.
//!
//! The file holds the key on its first line (a trailing newline, as `echo` writes, is not part
//! of it). Setting both the file and `OCULAR_API_KEY` is an error, not a precedence rule: two
//! sources of one secret drift apart. A file others may write is refused (whoever can write it
//! chooses the administrator key); one others may read is accepted with a warning, since
//! orchestrators mount secrets 0644 by default.

use std::path::Path;

use crate::Config;

/// Fills `config.api_key` from `config.api_key_file`. Returns a warning for the log (which is
/// not set up yet when this runs), or why the configuration is refused.
pub fn load_api_key_file(config: &mut Config) -> Result<Option<String>, String> {
    let Some(path) = config.api_key_file.clone() else { return Ok(None) };
    if config.api_key.is_some() {
        return Err("OCULAR_API_KEY and OCULAR_API_KEY_FILE are both set; keep one".into());
    }
    let warning = check_permissions(&path)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("OCULAR_API_KEY_FILE {}: cannot read it: {e}", path.display()))?;
    let key = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if key.is_empty() {
        return Err(format!("OCULAR_API_KEY_FILE {}: the first line is empty", path.display()));
    }
    config.api_key = Some(key.to_string());
    Ok(warning)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("OCULAR_API_KEY_FILE {}: cannot read it: {e}", path.display()))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "OCULAR_API_KEY_FILE {} may be written by other users (mode {mode:04o}); chmod 600 it",
            path.display()
        ));
    }
    Ok((mode & 0o044 != 0).then(|| {
        format!(
            "OCULAR_API_KEY_FILE {} may be read by other users (mode {mode:04o}); chmod 600 it unless a \
             container secret mount makes that moot",
            path.display()
        )
    }))
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<Option<String>, String> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn config(args: &[&str]) -> Config {
        Cli::try_parse_from(std::iter::once("ocular").chain(args.iter().copied())).expect("flags").config
    }

    fn key_file(dir: &tempfile::TempDir, text: &str, mode: u32) -> String {
        let path = dir.path().join("key");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path.to_str().expect("utf8").to_string()
    }

    #[test]
    fn the_key_comes_from_the_first_line_of_a_private_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = key_file(&dir, "0123456789abcdef-key\n", 0o600);
        let mut c = config(&["--api-key-file", &path]);
        assert_eq!(load_api_key_file(&mut c), Ok(None));
        assert_eq!(c.api_key.as_deref(), Some("0123456789abcdef-key"), "without the newline");
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "still redacted");
    }

    #[test]
    fn a_readable_file_warns_and_a_writable_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = key_file(&dir, "0123456789abcdef-key\n", 0o644);
        let warning = load_api_key_file(&mut config(&["--api-key-file", &path])).expect("accepted");
        assert!(warning.is_some_and(|w| w.contains("0644")));
        let path = key_file(&dir, "0123456789abcdef-key\n", 0o666);
        let err = load_api_key_file(&mut config(&["--api-key-file", &path])).expect_err("refused");
        assert!(err.contains("written by other users"), "{err}");
    }

    #[test]
    fn file_and_variable_together_empty_or_missing_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = key_file(&dir, "0123456789abcdef-key\n", 0o600);
        let mut both = config(&["--api-key-file", &path]);
        both.api_key = Some("another-key-of-16-chars".into());
        assert!(load_api_key_file(&mut both).expect_err("both").contains("both set"));
        let empty = key_file(&dir, "\nsecond line\n", 0o600);
        assert!(load_api_key_file(&mut config(&["--api-key-file", &empty])).is_err());
        let missing = dir.path().join("nope");
        let err = load_api_key_file(&mut config(&["--api-key-file", missing.to_str().expect("utf8")])).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        let short = key_file(&dir, "short\n", 0o600);
        let mut c = config(&["--api-key-file", &short]);
        load_api_key_file(&mut c).expect("read");
        assert!(c.validate().is_err(), "the 16-character rule applies to a key from a file too");
    }
}
