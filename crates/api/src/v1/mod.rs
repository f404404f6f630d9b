//! `/api/v1` bodies: one type for every request and response body, named for what it holds.
//!
//! Shapes are exactly what the server sends and accepts: a field that is `null` on the wire is an
//! `Option` serialized as `null`; a field that is left out when empty says so with
//! `skip_serializing_if`. Requests refuse unknown fields. Times are RFC 3339 strings, digests
//! `sha256:<hex>` strings, statuses lowercase strings.

mod control;
mod identity;
mod log;
mod promotion;
mod trust;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use control::*;
pub use identity::*;
pub use log::*;
pub use promotion::*;
pub use trust::*;

/// `{"error":{...}}`, the body of every `/api/v1` error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// What went wrong, what to do about it, and where it is documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// A stable code, `INVALID_PARAMETER`, `NOT_FOUND`, `APPROVAL_REFUSED`, ...
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// `GET /api/v1/system`: what this server is and how it is set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SystemInfo {
    pub version: String,
    pub stages: Vec<StageInfo>,
}

/// One configured stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StageInfo {
    pub name: String,
    pub pushable: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: &T,
        expect: expect_test::Expect,
    ) {
        let text = serde_json::to_string(value).unwrap();
        expect.assert_eq(&text);
        assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), value, "round trip");
    }

    fn principal() -> Principal {
        Principal {
            name: "alice".to_owned(),
            kind: "user".to_owned(),
            roles: vec!["deployer".to_owned()],
            disabled: false,
            epoch: 3,
            api_key_expires_at: None,
            mfa_enrolled: true,
            created_at: "2026-01-01T00:00:00Z".to_owned(),
            email: None,
        }
    }

    fn grant() -> Grant {
        Grant {
            id: "g-1".to_owned(),
            kind: "jit".to_owned(),
            principal: "alice".to_owned(),
            requested_by: "alice".to_owned(),
            approved_by: None,
            role: "deployer".to_owned(),
            reason: "incident 42".to_owned(),
            duration_secs: 1800,
            status: "pending".to_owned(),
            requested_at: "2026-01-01T00:00:00Z".to_owned(),
            decided_by: None,
            decided_at: None,
            expires_at: None,
        }
    }

    /// A field that may be unknown is `null`; one that is absent when empty is left out.
    #[test]
    fn null_and_absent_fields_are_what_the_server_sends() {
        check(
            &Freeze {
                stage: "prod".to_owned(),
                reason: "incident".to_owned(),
                frozen_by: "alice".to_owned(),
                frozen_at: "2026-01-01T00:00:00Z".to_owned(),
                unfreeze_requested_by: None,
            },
            expect_test::expect![[
                r#"{"stage":"prod","reason":"incident","frozen_by":"alice","frozen_at":"2026-01-01T00:00:00Z","unfreeze_requested_by":null}"#
            ]],
        );
        check(
            &Unfreeze {
                stage: "prod".to_owned(),
                frozen: false,
                unfreeze_requested_by: None,
                lifted_by: Some(vec!["alice".to_owned(), "bob".to_owned()]),
            },
            expect_test::expect![[r#"{"stage":"prod","frozen":false,"lifted_by":["alice","bob"]}"#]],
        );
        check(
            &Whoami { principal: principal(), warnings: None },
            expect_test::expect![[
                r#"{"name":"alice","kind":"user","roles":["deployer"],"disabled":false,"epoch":3,"mfa_enrolled":true,"created_at":"2026-01-01T00:00:00Z"}"#
            ]],
        );
        check(
            &GrantApproved {
                grant: grant(),
                enrollment_token: None,
                enrollment_expires_at: None,
                api_key: Some("alk_x".to_owned()),
                api_key_expires_at: Some("2026-02-01T00:00:00Z".to_owned()),
            },
            expect_test::expect![[
                r#"{"id":"g-1","kind":"jit","principal":"alice","requested_by":"alice","approved_by":null,"role":"deployer","reason":"incident 42","duration_secs":1800,"status":"pending","requested_at":"2026-01-01T00:00:00Z","decided_by":null,"decided_at":null,"expires_at":null,"api_key":"alk_x","api_key_expires_at":"2026-02-01T00:00:00Z"}"#
            ]],
        );
        check(
            &PrincipalChange::Pending(PendingChange { pending: grant() }),
            expect_test::expect![[
                r#"{"pending":{"id":"g-1","kind":"jit","principal":"alice","requested_by":"alice","approved_by":null,"role":"deployer","reason":"incident 42","duration_secs":1800,"status":"pending","requested_at":"2026-01-01T00:00:00Z","decided_by":null,"decided_at":null,"expires_at":null}}"#
            ]],
        );
        check(
            &PrincipalChange::Done(principal()),
            expect_test::expect![[
                r#"{"name":"alice","kind":"user","roles":["deployer"],"disabled":false,"epoch":3,"mfa_enrolled":true,"created_at":"2026-01-01T00:00:00Z"}"#
            ]],
        );
    }

    /// Requests refuse fields they do not know, and fill the ones they may leave out.
    #[test]
    fn requests_refuse_unknown_fields_and_default_the_optional_ones() {
        let request: PromotionRequest =
            serde_json::from_str(r#"{"repository": "dev/app", "reference": "1.0", "to": "staging"}"#).unwrap();
        assert_eq!((request.tag, request.reason.as_str(), request.break_glass), (None, "", false));
        assert!(
            serde_json::from_str::<PromotionRequest>(
                r#"{"repository": "dev/app", "reference": "1.0", "to": "staging", "force": true}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<PromotionDecision>(r#"{"comment": "ok", "extra": 1}"#).is_err());
        assert_eq!(serde_json::from_str::<KeyRequest>("{}").unwrap(), KeyRequest::default());
        let role: RoleDefinition =
            serde_json::from_str(r#"{"name": "r", "permissions": [{"actions": ["pull"]}]}"#).unwrap();
        // Fields left out stay out: the definition core stores is the one sent.
        expect_test::expect![[r#"{"name":"r","permissions":[{"actions":["pull"]}]}"#]]
            .assert_eq(&serde_json::to_string(&role).unwrap());
        let access: AccessRequest =
            serde_json::from_str(r#"{"role": "deployer", "duration": 90, "reason": "r"}"#).unwrap();
        assert_eq!(access.duration, serde_json::json!(90));
    }
}
