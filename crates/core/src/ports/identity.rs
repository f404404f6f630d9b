//! Users, service accounts, their role bindings and the changes to them that wait for approval.

use airlock_model::{PrincipalId, PrincipalKind, Timestamp};
use async_trait::async_trait;

use super::StoreError;
use crate::audit::Event;

/// A user or service account as stored. Secrets are stored only as hashes (an Argon2id PHC
/// string for passwords, hex SHA-256 for API keys); the TOTP seed is the one secret kept, since
/// verifying a code needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    /// Bumped by every change to what the principal may do (disabled, roles, credentials); a
    /// token carries the epoch it was issued at and dies when they differ.
    pub epoch: u64,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub api_key_hash: Option<String>,
    pub api_key_expires_at: Option<Timestamp>,
    /// Roles bound to the principal, sorted.
    pub roles: Vec<String>,
    pub created_at: Timestamp,
    /// The person's e-mail (users): approvals compare people by it, normalized by
    /// [`crate::identity::person::PersonRule`]; an approver without one cannot approve.
    pub email: Option<String>,
    /// Hex SHA-256 of the user's one-time enrollment token, while one is outstanding.
    pub enrollment_hash: Option<String>,
    /// When the outstanding enrollment token stops working.
    pub enrollment_expires_at: Option<Timestamp>,
}

impl PrincipalRecord {
    /// A principal as first stored: epoch 1, enabled, holding `roles`, with no credential and no
    /// e-mail yet.
    pub fn new(id: &PrincipalId, kind: PrincipalKind, roles: &[String], now: Timestamp) -> PrincipalRecord {
        PrincipalRecord {
            id: id.clone(),
            kind,
            epoch: 1,
            disabled: false,
            password_hash: None,
            totp_secret: None,
            api_key_hash: None,
            api_key_expires_at: None,
            roles: roles.to_vec(),
            created_at: now,
            email: None,
            enrollment_hash: None,
            enrollment_expires_at: None,
        }
    }
}

/// One change to a principal. Every change bumps its epoch, so tokens issued before it die.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalChange {
    Disable,
    Enable,
    SetPassword {
        hash: String,
    },
    SetTotp {
        secret: Option<String>,
    },
    SetApiKey {
        hash: String,
        expires_at: Timestamp,
    },
    GrantRole {
        role: String,
    },
    RevokeRole {
        role: String,
    },
    /// A new one-time enrollment token; the password and second factor are cleared, so only
    /// the token's holder can set new ones.
    SetEnrollment {
        hash: String,
        expires_at: Timestamp,
    },
    /// Completes an enrollment: applied only while the outstanding token's hash is
    /// `token_hash` (so a token is spent once); sets the password and second factor and clears
    /// the token.
    Enroll {
        token_hash: String,
        password_hash: String,
        totp_secret: String,
    },
}

/// Where a just-in-time grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    Pending,
    /// Approved; in force until `expires_at`.
    Active,
    Revoked,
    Denied,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Active => "active",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<GrantStatus> {
        [GrantStatus::Pending, GrantStatus::Active, GrantStatus::Revoked, GrantStatus::Denied]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// What a grant changes once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// A role for a while (just-in-time elevation), asked for by its holder.
    Jit,
    /// A role bound for good.
    Bind,
    /// A role unbound.
    Unbind,
    /// The principal disabled.
    Disable,
    /// A new enrollment: password and second factor cleared, a one-time token issued.
    Reset,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Jit => "jit",
            GrantKind::Bind => "bind",
            GrantKind::Unbind => "unbind",
            GrantKind::Disable => "disable",
            GrantKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<GrantKind> {
        [GrantKind::Jit, GrantKind::Bind, GrantKind::Unbind, GrantKind::Disable, GrantKind::Reset]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// A change to a principal that waits for approval: a just-in-time elevation (a role asked for
/// a while), or a privileged change an access admin asked for that takes a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub kind: GrantKind,
    /// The principal the change is to.
    pub principal: PrincipalId,
    /// Who asked: the holder for a just-in-time grant, an access admin otherwise.
    pub requested_by: PrincipalId,
    /// The first approval, when the change takes two.
    pub approved_by: Option<String>,
    /// The role granted, bound or unbound; empty for other kinds.
    pub role: String,
    pub reason: String,
    pub duration_secs: u64,
    pub status: GrantStatus,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// Set when approved.
    pub expires_at: Option<Timestamp>,
}

impl GrantRecord {
    /// Whether the grant gives its role at `now` (a just-in-time grant, approved and not expired).
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.kind == GrantKind::Jit && self.status == GrantStatus::Active && self.expires_at.is_some_and(|e| now < e)
    }
}

/// Users, service accounts and their role bindings.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    async fn principal(&self, id: &PrincipalId) -> Result<Option<PrincipalRecord>, StoreError>;
    /// The principal, and whether it holds an active just-in-time grant (a grant whose roles
    /// [`GrantRecord::in_force`] may add), read at one instant: a request by a principal without
    /// one needs no read of its grants. The default reads the principal and answers `true`.
    async fn principal_granted(&self, id: &PrincipalId) -> Result<Option<(PrincipalRecord, bool)>, StoreError> {
        Ok(self.principal(id).await?.map(|record| (record, true)))
    }
    /// Every principal, by name.
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError>;
    /// Stores a new principal (with its roles) and logs `event` with it; `false` when the name
    /// is taken (nothing stored, nothing logged).
    async fn create_principal(&self, record: &PrincipalRecord, event: &Event) -> Result<bool, StoreError>;
    /// Applies `change`, bumps the epoch and logs `event` in the same transaction; `None` when
    /// there is no such principal, or an `Enroll` whose token is not the outstanding one
    /// (nothing changed, nothing logged).
    async fn change_principal(
        &self,
        id: &PrincipalId,
        change: &PrincipalChange,
        event: &Event,
    ) -> Result<Option<PrincipalRecord>, StoreError>;
    /// Stores a new (pending) grant and logs `event` with it.
    async fn create_grant(&self, grant: &GrantRecord, event: &Event) -> Result<(), StoreError>;
    async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError>;
    /// Grants of `principal` (every principal's when `None`), newest first.
    async fn grants(&self, principal: Option<&PrincipalId>) -> Result<Vec<GrantRecord>, StoreError>;
    /// Moves grant `id` from `from` to `grant.status` with its decision fields (and
    /// `approved_by`), applying `change` to the grant's principal (raising its epoch) and logging
    /// `event`, all in one transaction; a revocation also raises the principal's epoch, so tokens
    /// carrying the role die. `None` when the grant is not in `from` any more, or has another
    /// first approval (a concurrent decision won; nothing changed, nothing logged).
    async fn decide_grant(
        &self,
        grant: &GrantRecord,
        from: GrantStatus,
        change: Option<&PrincipalChange>,
        event: &Event,
    ) -> Result<Option<GrantRecord>, StoreError>;
    /// Roles defined through the API: `(name, definition JSON)`, by name.
    async fn defined_roles(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Stores a role definition and logs `event` with it; `false` when the name is taken.
    async fn define_role(&self, name: &str, definition: &str, event: &Event) -> Result<bool, StoreError>;
}

/// Failed logins counted against one key: how many, and when the last one was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub failures: u32,
    pub last: Timestamp,
}

/// What a login leaves behind that every server over the store must see at once: failures that
/// back off a guesser, and the one-time-code steps already spent. Not logged: the log records
/// each failed login itself.
#[async_trait]
pub trait LoginStore: Send + Sync {
    /// Counts one failure at `now` against each of `keys`, starting a key's count over when its
    /// last failure is at or before `forget_before`. Returns each key's count after this one.
    async fn count_login_failures(
        &self,
        keys: &[String],
        now: Timestamp,
        forget_before: Timestamp,
    ) -> Result<Vec<u32>, StoreError>;
    /// The failures counted against each of `keys`, in order (`None`: none on record).
    async fn login_failures(&self, keys: &[String]) -> Result<Vec<Option<LoginFailures>>, StoreError>;
    /// Forgets the failures of `key` (its owner just proved the secret).
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets every key whose last failure is before `before`; returns how many were forgotten.
    async fn forget_login_failures(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Spends one-time-code step `step` of `principal`'s second factor `factor` (a fingerprint of
    /// its secret): `true` when it is later than every step spent before with that factor, or the
    /// factor is new (a new secret's codes start afresh); `false` (nothing changed) otherwise. So
    /// each code logs in once whichever server it reaches, and of two racing uses exactly one
    /// wins.
    async fn spend_totp_step(&self, principal: &PrincipalId, factor: &str, step: u64) -> Result<bool, StoreError>;
}
