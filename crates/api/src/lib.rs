//! Wire shapes: the OCI distribution JSON bodies and the `/api/v1` DTOs. Serde only, no logic.
//!
//! **API Boundary:** these types are what clients see. Change them only compatibly.

pub mod oci;
pub mod v1;
