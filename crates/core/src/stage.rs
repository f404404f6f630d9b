//! Stages: the ordered environments an artifact moves through, and which of them accept pushes.

use airlock_model::StageName;

use crate::promotion::pipeline::Gates;

/// One stage and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    name: StageName,
    pushable: bool,
    gates: Option<Gates>,
}

impl Stage {
    /// A stage; `pushable` stages accept writes from clients, the others only from promotion.
    pub fn new(name: StageName, pushable: bool) -> Stage {
        Stage { name, pushable, gates: None }
    }

    /// The stage reached by promotion through `gates`.
    pub fn with_gates(mut self, gates: Gates) -> Stage {
        self.gates = Some(gates);
        self
    }

    /// The gates promotions into this stage pass; `None` for a stage nothing is promoted into.
    pub fn gates(&self) -> Option<&Gates> {
        self.gates.as_ref()
    }

    pub fn name(&self) -> &StageName {
        &self.name
    }

    /// Whether clients may write here directly. A stage that is not pushable is gated.
    pub fn pushable(&self) -> bool {
        self.pushable
    }
}

/// Why a stage list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error("no stages are configured; list at least one under `[[stages]]`")]
    Empty,
    #[error("stage `{name}` is configured twice; stage names must be unique")]
    Duplicate { name: String },
}

/// The ordered stage list, `dev -> staging -> prod` unless configured otherwise. Shared, so the
/// registry and the services holding it clone in O(1) on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages(std::sync::Arc<[Stage]>);

impl Stages {
    /// Builds the list in promotion order.
    pub fn new(stages: Vec<Stage>) -> Result<Stages, StageError> {
        if stages.is_empty() {
            return Err(StageError::Empty);
        }
        for (i, stage) in stages.iter().enumerate() {
            if stages.iter().take(i).any(|s| s.name == stage.name) {
                return Err(StageError::Duplicate { name: stage.name.to_string() });
            }
        }
        Ok(Stages(stages.into()))
    }

    /// The stage named `name`, if configured.
    pub fn get(&self, name: &StageName) -> Option<&Stage> {
        self.0.iter().find(|s| &s.name == name)
    }

    /// The stages in promotion order.
    pub fn iter(&self) -> impl Iterator<Item = &Stage> {
        self.0.iter()
    }

    /// The stage after `name` in promotion order.
    pub fn next_after(&self, name: &StageName) -> Option<&Stage> {
        self.0.iter().skip_while(|s| &s.name != name).nth(1)
    }

    /// `dev -> staging -> prod` as a display string.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|s| if s.pushable { format!("{} (pushable)", s.name) } else { s.name.to_string() })
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}

impl Default for Stages {
    fn default() -> Self {
        // The three built-in names are valid by construction; the fallback keeps this panic-free.
        let (Ok(dev), Ok(staging), Ok(prod)) =
            (StageName::parse("dev"), StageName::parse("staging"), StageName::parse("prod"))
        else {
            return Stages(Vec::new().into());
        };
        Stages(
            vec![
                Stage::new(dev.clone(), true),
                Stage::new(staging.clone(), false).with_gates(Gates::default_staging(dev)),
                Stage::new(prod, false).with_gates(Gates::default_prod(staging)),
            ]
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> StageName {
        StageName::parse(s).unwrap()
    }

    #[test]
    fn default_is_dev_staging_prod() {
        let stages = Stages::default();
        assert_eq!(stages.describe(), "dev (pushable) -> staging -> prod");
        assert_eq!(stages.next_after(&name("dev")).map(|s| s.name().as_str()), Some("staging"));
        assert_eq!(stages.next_after(&name("prod")), None);
        assert!(stages.get(&name("dev")).unwrap().pushable());
        assert!(!stages.get(&name("prod")).unwrap().pushable());
    }

    #[test]
    fn refuses_empty_and_duplicate_lists() {
        assert_eq!(Stages::new(vec![]), Err(StageError::Empty));
        let dup = vec![Stage::new(name("dev"), true), Stage::new(name("dev"), false)];
        assert_eq!(Stages::new(dup), Err(StageError::Duplicate { name: "dev".into() }));
    }
}
