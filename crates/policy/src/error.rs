//! Why a policy bundle was refused: one variant per check. Evaluation never returns an error; its
//! failures are [`crate::EvalError`]s inside a denying [`crate::Decision`].

use crate::waiver::WaiverError;

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("bundle holds {count} files; the limit is {max}")]
    TooManyFiles { count: usize, max: usize },
    #[error("bundle holds more than {max} bytes; split it or drop files it does not need")]
    TooLarge { max: usize },
    #[error("bundle file `{path}` is {size} bytes; the limit is {max}")]
    FileTooLarge { path: String, size: usize, max: usize },
    #[error("bundle directory `{path}` nests deeper than {max} levels")]
    TooDeep { path: String, max: usize },
    #[error("bundle path `{path}` is invalid: use a relative `/`-separated path without empty, `.` or `..` segments")]
    BadPath { path: String },
    #[error("bundle path `{path}` is listed twice")]
    DuplicatePath { path: String },
    #[error("bundle file `{path}` is not a policy file; a bundle holds `.rego` files, `data.json` and `waivers.json`")]
    NotBundleFile { path: String },
    #[error("bundle file `{path}` is below the root; `data.json` and `waivers.json` are read only at the bundle root")]
    NestedSpecialFile { path: String },
    #[error("bundle file `{path}` is a symbolic link; copy the file into the bundle instead")]
    Symlink { path: String },
    #[error(
        "bundle file `{path}` nests `[` and `{{` more than {max} deep at line {line}; flatten it into helper rules"
    )]
    TooDeeplyNested { path: String, line: usize, max: usize },
    #[error("bundle file `{path}` is not UTF-8")]
    NotUtf8 { path: String },
    #[error("bundle `data.json` is not JSON: {source}")]
    Data {
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "bundle `data.json` is not a JSON object; it becomes `data`, so write an object like `{{\"airlock\": {{...}}}}`"
    )]
    DataNotObject,
    #[error("bundle `waivers.json` is invalid: {source}")]
    Waivers {
        #[source]
        source: WaiverError,
    },
    #[error("cannot read bundle path `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
