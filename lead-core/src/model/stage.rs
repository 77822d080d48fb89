//! Pipeline stages, their allowed transitions and default win probabilities.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a lead stands in the sales pipeline.
///
/// # Transitions
///
/// | from | to |
/// | --- | --- |
/// | any open stage | any later open stage (skipping is allowed), `lost`, `nurturing`, `unqualified` |
/// | `negotiation` | also `won` |
/// | `nurturing`, `unqualified` | `new`, `contacted`, `qualified`, `lost` (re-activation) |
/// | `lost` | `nurturing` (re-activating a cold lead) |
/// | `won` | nothing: a won deal is final |
///
/// Moving backwards between open stages is refused: it would hide a lost
/// opportunity. Staying in the same stage is refused too, so every history
/// row records a real change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Just captured.
    New,
    /// A rep reached the lead.
    Contacted,
    /// The lead has a real need and fit.
    Qualified,
    /// A proposal was sent.
    Proposal,
    /// Terms are being negotiated.
    Negotiation,
    /// Closed won.
    Won,
    /// Closed lost.
    Lost,
    /// Not ready; kept warm by nurturing sequences.
    Nurturing,
    /// Not a fit.
    Unqualified,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 9] = [
        Stage::New,
        Stage::Contacted,
        Stage::Qualified,
        Stage::Proposal,
        Stage::Negotiation,
        Stage::Won,
        Stage::Lost,
        Stage::Nurturing,
        Stage::Unqualified,
    ];

    /// The lower-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Contacted => "contacted",
            Stage::Qualified => "qualified",
            Stage::Proposal => "proposal",
            Stage::Negotiation => "negotiation",
            Stage::Won => "won",
            Stage::Lost => "lost",
            Stage::Nurturing => "nurturing",
            Stage::Unqualified => "unqualified",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(raw: &str) -> Result<Self> {
        let wanted = raw.trim().to_ascii_lowercase();
        Stage::ALL
            .into_iter()
            .find(|s| s.as_str() == wanted)
            .ok_or_else(|| {
                Error::invalid(
                    "stage",
                    "invalid_stage",
                    format!("unknown stage `{}`", raw.trim()),
                )
            })
    }

    /// Position in the open pipeline (`new` = 0 … `negotiation` = 4).
    fn open_rank(self) -> Option<u8> {
        match self {
            Stage::New => Some(0),
            Stage::Contacted => Some(1),
            Stage::Qualified => Some(2),
            Stage::Proposal => Some(3),
            Stage::Negotiation => Some(4),
            _ => None,
        }
    }

    /// `true` while the lead is still being worked (counts towards a rep's
    /// open-lead capacity).
    pub fn is_open(self) -> bool {
        !matches!(self, Stage::Won | Stage::Lost | Stage::Unqualified)
    }

    /// Whether the pipeline allows moving from `self` to `to` (see the table on [`Stage`]).
    pub fn can_move_to(self, to: Stage) -> bool {
        if self == to {
            return false;
        }
        match (self, to) {
            (Stage::Won, _) => false,
            (Stage::Lost, to) => to == Stage::Nurturing,
            (Stage::Nurturing | Stage::Unqualified, to) => {
                matches!(
                    to,
                    Stage::New | Stage::Contacted | Stage::Qualified | Stage::Lost
                ) || (self == Stage::Unqualified && to == Stage::Nurturing)
                    || (self == Stage::Nurturing && to == Stage::Unqualified)
            }
            (from, Stage::Won) => from == Stage::Negotiation,
            (_, Stage::Lost | Stage::Nurturing | Stage::Unqualified) => true,
            (from, to) => match (from.open_rank(), to.open_rank()) {
                (Some(a), Some(b)) => b > a,
                _ => false,
            },
        }
    }

    /// Checks a transition, explaining a refusal.
    pub fn check_transition(self, to: Stage) -> Result<()> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            Err(Error::NotAllowed(format!(
                "a lead cannot move from `{self}` to `{to}`"
            )))
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Win probability per stage, in percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageProbabilities {
    /// `new` (default 5).
    pub new: u8,
    /// `contacted` (default 10).
    pub contacted: u8,
    /// `qualified` (default 20).
    pub qualified: u8,
    /// `proposal` (default 40).
    pub proposal: u8,
    /// `negotiation` (default 60).
    pub negotiation: u8,
    /// `won` (default 100).
    pub won: u8,
    /// `lost` (default 0).
    pub lost: u8,
    /// `nurturing` (default 5, like a new lead).
    pub nurturing: u8,
    /// `unqualified` (default 0).
    pub unqualified: u8,
}

impl Default for StageProbabilities {
    fn default() -> Self {
        Self {
            new: 5,
            contacted: 10,
            qualified: 20,
            proposal: 40,
            negotiation: 60,
            won: 100,
            lost: 0,
            nurturing: 5,
            unqualified: 0,
        }
    }
}

impl StageProbabilities {
    /// The probability for a stage.
    pub fn of(&self, stage: Stage) -> u8 {
        match stage {
            Stage::New => self.new,
            Stage::Contacted => self.contacted,
            Stage::Qualified => self.qualified,
            Stage::Proposal => self.proposal,
            Stage::Negotiation => self.negotiation,
            Stage::Won => self.won,
            Stage::Lost => self.lost,
            Stage::Nurturing => self.nurturing,
            Stage::Unqualified => self.unqualified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_moves_forward_and_never_back() {
        assert!(Stage::New.can_move_to(Stage::Contacted));
        assert!(Stage::New.can_move_to(Stage::Proposal));
        assert!(!Stage::Proposal.can_move_to(Stage::Contacted));
        assert!(!Stage::New.can_move_to(Stage::Won));
        assert!(Stage::Negotiation.can_move_to(Stage::Won));
        assert!(!Stage::Won.can_move_to(Stage::Lost));
        assert!(Stage::Lost.can_move_to(Stage::Nurturing));
        assert!(!Stage::Lost.can_move_to(Stage::New));
        assert!(!Stage::Qualified.can_move_to(Stage::Qualified));
    }

    #[test]
    fn default_probabilities_follow_the_spec() {
        let p = StageProbabilities::default();
        let got: Vec<u8> = [
            Stage::New,
            Stage::Contacted,
            Stage::Qualified,
            Stage::Proposal,
            Stage::Negotiation,
            Stage::Won,
            Stage::Lost,
        ]
        .into_iter()
        .map(|s| p.of(s))
        .collect();
        assert_eq!(got, [5, 10, 20, 40, 60, 100, 0]);
    }
}
