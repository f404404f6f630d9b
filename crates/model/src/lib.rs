//! Airlock's vocabulary: newtypes that are parsed once at the trust boundary and trusted after.
//!
//! Every type here is built only through `parse` (or `TryFrom`/`FromStr`), has private fields and
//! no setters. Holding a [`RepoName`] means the string already matched the OCI name grammar and
//! Airlock's stage rule; no later layer re-checks it.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod digest;
pub mod echo;
pub mod jcs;
pub mod json;
pub mod manifest;
mod media_type;
mod name;
pub mod pattern;
mod principal;
mod time;

pub use digest::{Digest, DigestError, Sha256Hasher};
pub use media_type::{MediaType, MediaTypeError};
pub use name::{NameError, Reference, RepoName, StageName, Tag};
pub use principal::{
    PRINCIPAL_NAME_MAX_LEN, PrincipalId, PrincipalIdError, PrincipalKind, RESERVED_PRINCIPAL_NAMES,
    RESERVED_PRINCIPAL_PREFIX,
};
pub use time::Timestamp;
pub use upload::{UploadId, UploadIdError};
mod upload;
