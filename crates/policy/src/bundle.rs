//! Policy bundles: a directory of `.rego` files, an optional `data.json`, `*_test.rego` tests and
//! an optional `waivers.json`, bounded, checked and named by a digest.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_model::echo::echo;
use airlock_model::{Digest, Sha256Hasher};

use crate::error::PolicyError;
use crate::waiver::{Waiver, WaiverLimits, parse_waivers};

/// Most files a bundle may hold.
pub const BUNDLE_MAX_FILES: usize = 256;
/// Most bytes all of a bundle's files may hold together.
pub const BUNDLE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most bytes one file of a bundle may hold (regorus' own limit for one policy file).
pub const BUNDLE_FILE_MAX_BYTES: usize = 1024 * 1024;
/// Longest relative path of a file in a bundle, in bytes.
pub const BUNDLE_PATH_MAX_LEN: usize = 255;
/// Deepest directory nesting read by [`Bundle::load_dir`].
pub const BUNDLE_MAX_DEPTH: usize = 8;
/// Deepest nesting of `[` and `{` in a `.rego` file. regorus' parser backtracks on these, and
/// its time roughly doubles with each level (a 1 MiB file of 6-deep literals takes 20 s), so a
/// file is refused before it is parsed. Real policies nest 3 to 6 deep.
pub const REGO_MAX_NESTING: usize = 12;

/// The name of a bundle's data document.
pub const DATA_FILE: &str = "data.json";
/// The name of a bundle's waiver list.
pub const WAIVERS_FILE: &str = "waivers.json";

/// Bounds on a bundle, checked when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLimits {
    pub max_files: usize,
    pub max_bytes: usize,
    pub max_file_bytes: usize,
    pub max_depth: usize,
    /// Deepest `[`/`{` nesting in a `.rego` file.
    pub max_nesting: usize,
    pub waivers: WaiverLimits,
}

impl Default for BundleLimits {
    fn default() -> BundleLimits {
        BundleLimits {
            max_files: BUNDLE_MAX_FILES,
            max_bytes: BUNDLE_MAX_BYTES,
            max_file_bytes: BUNDLE_FILE_MAX_BYTES,
            max_depth: BUNDLE_MAX_DEPTH,
            max_nesting: REGO_MAX_NESTING,
            waivers: WaiverLimits::default(),
        }
    }
}

/// What a file of a bundle is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A `.rego` module evaluated for decisions.
    Policy,
    /// A `*_test.rego` module, compiled only by [`crate::run_tests`].
    Test,
    /// `data.json` at the root: the document under `data`.
    Data,
    /// `waivers.json` at the root.
    Waivers,
}

/// A checked bundle. Build it with [`Bundle::load_dir`], [`Bundle::from_files`] or
/// [`crate::default_bundle`]; it is immutable after.
///
/// # Digest
///
/// A bundle's digest is `sha256:<hex>` of, for each of its files in byte order of their relative
/// paths: the path (UTF-8, `/`-separated), a NUL byte, the file's length in bytes as ASCII
/// decimal, a NUL byte, then the file's bytes. Only the files that make the bundle (`.rego`,
/// `data.json`, `waivers.json`) count; [`Bundle::load_dir`] skips every other file.
///
/// # Signature
///
/// [`Bundle::load_dir`] also reads the signature file [`crate::SIGNATURE_FILE`] at the root,
/// when there is one: it is kept beside the files, outside the digest and out of Rego's sight,
/// and checked by [`crate::verify_bundle`].
#[derive(Debug, Clone)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
    digest: Digest,
    data: Option<serde_json::Value>,
    waivers: Vec<Waiver>,
    signature: Option<Vec<u8>>,
}

impl Bundle {
    /// Reads a bundle directory with the default limits.
    pub fn load_dir(path: &Path) -> Result<Bundle, PolicyError> {
        Bundle::load_dir_with(path, &BundleLimits::default())
    }

    /// Reads a bundle directory: its `.rego` files at any depth up to `limits.max_depth`, and
    /// `data.json` and `waivers.json` at its root. Hidden entries (`.git`) and other files are
    /// skipped; a symbolic link is refused, since it could point outside the bundle.
    pub fn load_dir_with(path: &Path, limits: &BundleLimits) -> Result<Bundle, PolicyError> {
        let mut files = Vec::new();
        let mut total = 0usize;
        collect(path, path, 0, limits, &mut files, &mut total)?;
        let signature = read_signature(path)?;
        let mut bundle = Bundle::from_files_with(files, limits)?;
        bundle.signature = signature;
        Ok(bundle)
    }

    /// This bundle with `signature` as the contents of its signature file.
    pub fn with_signature(mut self, signature: Vec<u8>) -> Bundle {
        self.signature = Some(signature);
        self
    }

    /// The signature file's bytes as read, if the bundle has one; see [`crate::verify_bundle`].
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }

    /// Builds a bundle from `(relative path, bytes)` pairs with the default limits.
    pub fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Bundle, PolicyError> {
        Bundle::from_files_with(files, &BundleLimits::default())
    }

    /// Builds a bundle from `(relative path, bytes)` pairs. Every file must be a bundle file
    /// (`.rego`, root `data.json`, root `waivers.json`); paths are relative, `/`-separated, without
    /// empty, `.` or `..` segments. `data.json` must be a JSON object; `.rego` files UTF-8; the
    /// waivers are checked against `limits.waivers`.
    pub fn from_files_with(files: Vec<(String, Vec<u8>)>, limits: &BundleLimits) -> Result<Bundle, PolicyError> {
        if files.len() > limits.max_files {
            return Err(PolicyError::TooManyFiles { count: files.len(), max: limits.max_files });
        }
        let mut total = 0usize;
        let mut map = BTreeMap::new();
        for (path, bytes) in files {
            check_path(&path)?;
            if bytes.len() > limits.max_file_bytes {
                return Err(PolicyError::FileTooLarge { path, size: bytes.len(), max: limits.max_file_bytes });
            }
            total = total.saturating_add(bytes.len());
            if total > limits.max_bytes {
                return Err(PolicyError::TooLarge { max: limits.max_bytes });
            }
            match kind(&path) {
                Some(FileKind::Policy | FileKind::Test) => {
                    let Ok(source) = std::str::from_utf8(&bytes) else {
                        return Err(PolicyError::NotUtf8 { path });
                    };
                    if let Some(line) = too_deep(source, limits.max_nesting) {
                        return Err(PolicyError::TooDeeplyNested { path, line, max: limits.max_nesting });
                    }
                }
                Some(FileKind::Data | FileKind::Waivers) => {}
                None => return Err(PolicyError::NotBundleFile { path: echo(&path) }),
            }
            if map.insert(path.clone(), bytes).is_some() {
                return Err(PolicyError::DuplicatePath { path: echo(&path) });
            }
        }
        let data = match map.get(DATA_FILE) {
            Some(bytes) => {
                let value: serde_json::Value =
                    serde_json::from_slice(bytes).map_err(|source| PolicyError::Data { source })?;
                if !value.is_object() {
                    return Err(PolicyError::DataNotObject);
                }
                Some(value)
            }
            None => None,
        };
        let waivers = match map.get(WAIVERS_FILE) {
            Some(bytes) => parse_waivers(bytes, &limits.waivers).map_err(|source| PolicyError::Waivers { source })?,
            None => Vec::new(),
        };
        let digest = digest(&map);
        Ok(Bundle { files: map, digest, data, waivers, signature: None })
    }

    /// The bundle's digest; see the type documentation for the framing.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Every file, by relative path, in byte order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8], FileKind)> {
        self.files.iter().filter_map(|(p, b)| kind(p).map(|k| (p.as_str(), b.as_slice(), k)))
    }

    /// The `.rego` modules of one kind, as `(path, source)`.
    pub(crate) fn modules(&self, wanted: FileKind) -> impl Iterator<Item = (&str, &str)> {
        self.files()
            .filter(move |(_, _, k)| *k == wanted)
            .filter_map(|(p, b, _)| std::str::from_utf8(b).ok().map(|s| (p, s)))
    }

    /// `data.json`, parsed.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }

    /// The checked waivers of `waivers.json`, sorted by id.
    pub fn waivers(&self) -> &[Waiver] {
        &self.waivers
    }
}

/// What `path` is in a bundle, or `None` when it is no bundle file.
fn kind(path: &str) -> Option<FileKind> {
    if path == DATA_FILE {
        Some(FileKind::Data)
    } else if path == WAIVERS_FILE {
        Some(FileKind::Waivers)
    } else if path.ends_with("_test.rego") {
        Some(FileKind::Test)
    } else if path.ends_with(".rego") {
        Some(FileKind::Policy)
    } else {
        None
    }
}

/// The line where `[`/`{` nesting in Rego `source` first exceeds `max`, outside strings and
/// comments; one linear pass.
fn too_deep(source: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line = line.saturating_add(1),
            // A comment runs to the end of its line.
            '#' if chars.by_ref().any(|c| c == '\n') => line = line.saturating_add(1),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line = line.saturating_add(1);
                    } else if c == '`' {
                        break;
                    }
                }
            }
            '[' | '{' => {
                depth = depth.saturating_add(1);
                if depth > max {
                    return Some(line);
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn check_path(path: &str) -> Result<(), PolicyError> {
    let bad = path.is_empty()
        || path.len() > BUNDLE_PATH_MAX_LEN
        || path.chars().any(|c| c.is_control() || c == '\\')
        || path.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(PolicyError::BadPath { path: echo(path) });
    }
    Ok(())
}

fn digest(files: &BTreeMap<String, Vec<u8>>) -> Digest {
    let mut hasher = Sha256Hasher::new();
    for (path, bytes) in files {
        hasher.update(path.as_bytes());
        hasher.update(b"\0");
        hasher.update(bytes.len().to_string().as_bytes());
        hasher.update(b"\0");
        hasher.update(bytes);
    }
    hasher.finish()
}

/// The signature file at the bundle root `root`, if any, read only up to one byte past its limit
/// (a larger file is refused when verified). A symbolic link is refused, like any bundle file.
fn read_signature(root: &Path) -> Result<Option<Vec<u8>>, PolicyError> {
    use std::io::Read as _;
    let path = root.join(crate::SIGNATURE_FILE);
    let io = |source| PolicyError::Io { path: path.display().to_string(), source };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(PolicyError::Symlink { path: crate::SIGNATURE_FILE.to_owned() });
    }
    let file = std::fs::File::open(&path).map_err(io)?;
    let cap = u64::try_from(crate::SIGNATURE_MAX_BYTES).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes).map_err(io)?;
    Ok(Some(bytes))
}

/// Walks `dir` (under bundle root `root`) for bundle files, refusing symbolic links.
fn collect(
    root: &Path,
    dir: &Path,
    depth: usize,
    limits: &BundleLimits,
    out: &mut Vec<(String, Vec<u8>)>,
    total: &mut usize,
) -> Result<(), PolicyError> {
    if depth > limits.max_depth {
        return Err(PolicyError::TooDeep { path: dir.display().to_string(), max: limits.max_depth });
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| PolicyError::Io { path, source }
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let relative = relative
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join("/"))
            .ok_or_else(|| PolicyError::BadPath { path: echo(&relative.display().to_string()) })?;
        if meta.file_type().is_symlink() {
            return Err(PolicyError::Symlink { path: relative });
        }
        if meta.is_dir() {
            collect(root, &path, depth.saturating_add(1), limits, out, total)?;
            continue;
        }
        let nested_special = depth > 0 && (name == DATA_FILE || name == WAIVERS_FILE);
        if nested_special {
            return Err(PolicyError::NestedSpecialFile { path: relative });
        }
        if kind(&relative).is_none() {
            continue;
        }
        if out.len() >= limits.max_files {
            return Err(PolicyError::TooManyFiles { count: out.len().saturating_add(1), max: limits.max_files });
        }
        // Check sizes before reading, so a huge file is never read into memory.
        let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
        if size > limits.max_file_bytes {
            return Err(PolicyError::FileTooLarge { path: relative, size, max: limits.max_file_bytes });
        }
        *total = total.saturating_add(size);
        if *total > limits.max_bytes {
            return Err(PolicyError::TooLarge { max: limits.max_bytes });
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        out.push((relative, bytes));
    }
    Ok(())
}

/// The default policy library's files, embedded in the binary: `(relative path, contents)`.
const LIBRARY: &[(&str, &str)] = &[
    ("airlock.rego", include_str!("../library/airlock.rego")),
    ("attestations.rego", include_str!("../library/attestations.rego")),
    ("vulnerabilities.rego", include_str!("../library/vulnerabilities.rego")),
    ("licenses.rego", include_str!("../library/licenses.rego")),
    ("source.rego", include_str!("../library/source.rego")),
    ("data.json", include_str!("../library/data.json")),
    ("airlock_test.rego", include_str!("../library/airlock_test.rego")),
    ("vulnerabilities_test.rego", include_str!("../library/vulnerabilities_test.rego")),
    ("licenses_test.rego", include_str!("../library/licenses_test.rego")),
    ("source_test.rego", include_str!("../library/source_test.rego")),
];

/// The default library's files, to write out as a starting point for a site's own bundle.
pub fn default_bundle_files() -> Vec<(String, Vec<u8>)> {
    LIBRARY.iter().map(|(path, text)| ((*path).to_owned(), text.as_bytes().to_vec())).collect()
}

/// The default policy library (see `docs/policies/`), embedded in the binary.
pub fn default_bundle() -> Result<Bundle, PolicyError> {
    Bundle::from_files(default_bundle_files())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(files: &[(&str, &str)], expect: Expect) {
        let files = files.iter().map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec())).collect();
        let actual = match Bundle::from_files(files) {
            Ok(b) => b.digest().to_string(),
            Err(e) => format!("err {e}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn digest_framing() {
        // sha256("a.rego\x00" "12\x00" "package a\n\n\n"), as `hashlib.sha256` computes it.
        let files = [("a.rego", "package a\n\n\n")];
        let mut framed = b"a.rego\x0012\x00".to_vec();
        framed.extend_from_slice(b"package a\n\n\n");
        let bundle =
            Bundle::from_files(files.iter().map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec())).collect()).unwrap();
        assert_eq!(bundle.digest(), &Digest::of(&framed));
        check(&files, expect!["sha256:4ad98ef2121e6d11b4cca8840bafbcba3946aff065332f0534a7050fdb6cc3cd"]);
        // Order of the input does not matter; the framing keeps path and content apart.
        let ab = [("a.rego", "package a"), ("b.rego", "package b")];
        let ba = [("b.rego", "package b"), ("a.rego", "package a")];
        let digest = |f: &[(&str, &str)]| {
            Bundle::from_files(f.iter().map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec())).collect())
                .unwrap()
                .digest()
                .clone()
        };
        assert_eq!(digest(&ab), digest(&ba));
        // Without the lengths, one file could pass for two.
        assert_ne!(
            digest(&[("a.rego", "package a"), ("b.rego", "")]),
            digest(&[("a.rego", "package ab.rego\x000\x00")])
        );
    }

    #[test]
    fn refused_files() {
        check(
            &[("../a.rego", "")],
            expect![
                "err bundle path `../a.rego` is invalid: use a relative `/`-separated path without empty, `.` or `..` segments"
            ],
        );
        check(
            &[("/a.rego", "")],
            expect![
                "err bundle path `/a.rego` is invalid: use a relative `/`-separated path without empty, `.` or `..` segments"
            ],
        );
        check(
            &[("a\\b.rego", "")],
            expect![
                "err bundle path `a\\b.rego` is invalid: use a relative `/`-separated path without empty, `.` or `..` segments"
            ],
        );
        check(
            &[("README.md", "")],
            expect![
                "err bundle file `README.md` is not a policy file; a bundle holds `.rego` files, `data.json` and `waivers.json`"
            ],
        );
        check(
            &[("data.json", "[1]")],
            expect![
                "err bundle `data.json` is not a JSON object; it becomes `data`, so write an object like `{\"airlock\": {...}}`"
            ],
        );
        check(
            &[("data.json", "{")],
            expect!["err bundle `data.json` is not JSON: EOF while parsing an object at line 1 column 1"],
        );
        check(
            &[("waivers.json", "[{\"id\": \"w\"}]")],
            expect![
                "err bundle `waivers.json` is invalid: waiver number 1 has no `repository`; every waiver needs one"
            ],
        );
        let many: Vec<(String, Vec<u8>)> = (0..=BUNDLE_MAX_FILES).map(|i| (format!("p{i}.rego"), vec![])).collect();
        assert!(matches!(Bundle::from_files(many), Err(PolicyError::TooManyFiles { count: 257, max: 256 })));
        let big = vec![b' '; BUNDLE_FILE_MAX_BYTES + 1];
        assert!(matches!(Bundle::from_files(vec![("a.rego".into(), big)]), Err(PolicyError::FileTooLarge { .. })));
        let five: Vec<(String, Vec<u8>)> =
            (0..5).map(|i| (format!("p{i}.rego"), vec![b' '; BUNDLE_FILE_MAX_BYTES])).collect();
        assert!(matches!(Bundle::from_files(five), Err(PolicyError::TooLarge { .. })));
        assert!(matches!(Bundle::from_files(vec![("a.rego".into(), vec![0xff])]), Err(PolicyError::NotUtf8 { .. })));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let nested = |d: usize| format!("package airlock\n\nx := {}1{}\n", "[".repeat(d), "]".repeat(d));
        check(
            &[("a.rego", &nested(12))],
            expect!["sha256:7241b206e5b463a57a0a09bf6e6cb757a802cd8c39bfa886e353c24cff0656d3"],
        );
        check(
            &[("a.rego", &nested(13))],
            expect![
                "err bundle file `a.rego` nests `[` and `{` more than 12 deep at line 3; flatten it into helper rules"
            ],
        );
        // Brackets in strings, raw strings and comments do not count.
        let quoted = format!("package airlock\n# {0}\nx := \"{0}\\\"{0}\"\ny := `{0}\n{0}`\n", "[".repeat(40));
        assert!(too_deep(&quoted, 12).is_none());
        assert_eq!(too_deep("a\n{\n[[", 2), Some(3));
        let max = BUNDLE_FILE_MAX_BYTES;
        assert!(too_deep(&"{".repeat(max), REGO_MAX_NESTING).is_some());
    }

    #[test]
    fn load_dir_reads_bundle_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.rego"), "package airlock\n").unwrap();
        std::fs::write(dir.path().join("data.json"), "{}").unwrap();
        std::fs::write(dir.path().join("README.md"), "skipped").unwrap();
        std::fs::create_dir_all(dir.path().join("lib/.git")).unwrap();
        std::fs::write(dir.path().join("lib/helpers.rego"), "package airlock.lib\n").unwrap();
        std::fs::write(dir.path().join("lib/helpers_test.rego"), "package airlock.lib_test\n").unwrap();
        std::fs::write(dir.path().join("lib/.git/x.rego"), "hidden").unwrap();
        let bundle = Bundle::load_dir(dir.path()).unwrap();
        let listed: Vec<String> = bundle.files().map(|(p, _, k)| format!("{p}:{k:?}")).collect();
        assert_eq!(
            listed,
            ["data.json:Data", "lib/helpers.rego:Policy", "lib/helpers_test.rego:Test", "policy.rego:Policy"]
        );
        let same = Bundle::from_files(
            [
                ("policy.rego", "package airlock\n"),
                ("data.json", "{}"),
                ("lib/helpers.rego", "package airlock.lib\n"),
                ("lib/helpers_test.rego", "package airlock.lib_test\n"),
            ]
            .iter()
            .map(|(p, b)| ((*p).to_owned(), b.as_bytes().to_vec()))
            .collect(),
        )
        .unwrap();
        assert_eq!(bundle.digest(), same.digest());

        std::fs::write(dir.path().join("lib/data.json"), "{}").unwrap();
        let err = Bundle::load_dir(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            "bundle file `lib/data.json` is below the root; `data.json` and `waivers.json` are read only at the bundle root"
        );
        std::fs::remove_file(dir.path().join("lib/data.json")).unwrap();

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", dir.path().join("evil.rego")).unwrap();
            let err = Bundle::load_dir(dir.path()).unwrap_err().to_string();
            assert_eq!(err, "bundle file `evil.rego` is a symbolic link; copy the file into the bundle instead");
        }
    }

    #[test]
    fn default_library_lists_every_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        on_disk.sort();
        let mut embedded: Vec<String> = LIBRARY.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add every file of library/ to LIBRARY");
        let loaded = Bundle::load_dir(&dir).unwrap();
        assert_eq!(loaded.digest(), default_bundle().unwrap().digest());
    }
}
