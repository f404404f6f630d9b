//! The one place domain values become wire values and back: `to_api` turns core's records and
//! views into the `/api/v1` DTOs of `airlock_api::v1`, `from_api` turns a request DTO into what
//! core takes where that is more than a field copy. Handlers call these and nothing else to
//! shape a body.

pub mod from_api;
pub mod to_api;
