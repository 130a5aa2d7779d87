//! The domain's closed sets of values. Each is a GraphQL enum and is stored as its
//! GraphQL name (text columns with CHECK constraints), except severities, which are
//! stored as ranks so that they order and compare.

/// Defines an enum whose stored text is its GraphQL name.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored (and GraphQL) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value of a stored name; `None` for anything this build does not know.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

text_enum!(
    /// What a case is: the customer's own investigation, or a request to a provider's team.
    CaseKind {
        /// A case the tenant's own analysts work.
        SelfManaged = "SELF_MANAGED",
        /// A request to the MDR team (needs the MDR license).
        MdrServiceRequest = "MDR_SERVICE_REQUEST",
        /// A request to the Managed Risk team (needs the Managed Risk license).
        ManagedRiskServiceRequest = "MANAGED_RISK_SERVICE_REQUEST",
    }
);

impl CaseKind {
    pub const fn is_service_request(self) -> bool {
        !matches!(self, CaseKind::SelfManaged)
    }
}

text_enum!(
    /// Where a case is in its life: open statuses, then resolved, then archived.
    CaseStatus {
        /// Open: not looked at yet.
        New = "NEW",
        /// Open: being worked.
        Investigating = "INVESTIGATING",
        /// Open: waiting.
        OnHold = "ON_HOLD",
        /// Open: someone must act.
        ActionRequired = "ACTION_REQUIRED",
        /// Closed with a resolution; never reopened.
        Resolved = "RESOLVED",
        /// Archived: detections, file contents and messages removed; never changes again.
        Archived = "ARCHIVED",
    }
);

impl CaseStatus {
    /// The statuses of a case that is still being worked.
    pub const OPEN: [CaseStatus; 4] = [
        CaseStatus::New,
        CaseStatus::Investigating,
        CaseStatus::OnHold,
        CaseStatus::ActionRequired,
    ];

    pub fn is_open(self) -> bool {
        CaseStatus::OPEN.contains(&self)
    }
}

text_enum!(
    /// The verdict a resolved case records.
    Resolution {
        /// A real incident: the activity was malicious or harmful.
        ConfirmedIncident = "CONFIRMED_INCIDENT",
        /// A real threat, stopped before it did harm.
        ThreatMitigated = "THREAT_MITIGATED",
        /// The activity was real but allowed (a sanctioned tool, a permitted transfer).
        AuthorizedActivity = "AUTHORIZED_ACTIVITY",
        /// The detections were wrong: nothing of what they reported happened.
        FalsePositive = "FALSE_POSITIVE",
        /// The attack was real but could not succeed against the target.
        NotVulnerable = "NOT_VULNERABLE",
        /// The investigation could not reach a verdict.
        Inconclusive = "INCONCLUSIVE",
    }
);

text_enum!(
    /// What reported a detection.
    DetectionSource {
        /// An XDR sensor's detection.
        Xdr = "XDR",
        /// An Incydr-style file event.
        FileActivity = "FILE_ACTIVITY",
        /// A detection of the MDR team: never in a self-managed case.
        Mdr = "MDR",
        /// A detection of the Managed Risk team: never in a self-managed case.
        ManagedRisk = "MANAGED_RISK",
    }
);

impl DetectionSource {
    /// Whether detections of this source may go into a self-managed case.
    pub const fn allowed_in_self_managed(self) -> bool {
        matches!(self, DetectionSource::Xdr | DetectionSource::FileActivity)
    }
}

text_enum!(
    /// Whether a file event's contents can be had.
    FileAvailability {
        /// The exact file of the event (same SHA-256) can be had.
        ExactFileAvailable = "EXACT_FILE_AVAILABLE",
        /// Only a more recent version of the file can be had.
        RecentFileAvailable = "RECENT_FILE_AVAILABLE",
        /// No copy of the file can be had (the default when a sensor does not say).
        NoFileAvailable = "NO_FILE_AVAILABLE",
        /// The sensor is still looking for the file.
        Pending = "PENDING",
        /// The sensor failed to get the file.
        Error = "ERROR",
    }
);

/// How severe a detection or a case is, from INFORMATIONAL up to CRITICAL; filters and
/// orders compare in that order.
// Stored as its rank (1–5; 0 stands for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, async_graphql::Enum)]
pub enum Severity {
    /// Worth knowing, no risk (a detection's risk score 0).
    Informational,
    /// Low risk (risk score 1–3).
    Low,
    /// Medium risk (risk score 4–6).
    Medium,
    /// High risk (risk score 7–8); by default the level that opens automatic cases.
    High,
    /// Critical risk (risk score 9 and up).
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The stored rank: 1 (informational) to 5 (critical).
    pub const fn rank(self) -> i16 {
        self as i16 + 1
    }

    /// The severity of a stored rank; 0 (and anything unknown) is none.
    pub fn from_rank(rank: i16) -> Option<Self> {
        Severity::ALL.get(usize::try_from(rank).ok()?.checked_sub(1)?).copied()
    }

    /// A detection's severity from its risk score: 0 informational, 1–3 low, 4–6 medium,
    /// 7–8 high, 9 and up critical (the database computes the same in a generated column).
    pub const fn from_risk_score(score: i32) -> Self {
        match score {
            i32::MIN..=0 => Severity::Informational,
            1..=3 => Severity::Low,
            4..=6 => Severity::Medium,
            7..=8 => Severity::High,
            _ => Severity::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_the_risk_score_bands() {
        let bands = [(0, "Informational"), (1, "Low"), (3, "Low"), (4, "Medium"), (6, "Medium")];
        for (score, name) in bands {
            assert_eq!(format!("{:?}", Severity::from_risk_score(score)), name, "score {score}");
        }
        assert_eq!(Severity::from_risk_score(7), Severity::High);
        assert_eq!(Severity::from_risk_score(8), Severity::High);
        assert_eq!(Severity::from_risk_score(9), Severity::Critical);
        assert_eq!(Severity::from_risk_score(250), Severity::Critical);
    }

    #[test]
    fn severity_ranks_round_trip_and_zero_is_none() {
        for severity in Severity::ALL {
            assert_eq!(Severity::from_rank(severity.rank()), Some(severity));
        }
        assert_eq!(Severity::from_rank(0), None);
        assert_eq!(Severity::from_rank(6), None);
        assert!(Severity::Critical > Severity::High);
    }

    #[test]
    fn stored_names_round_trip() {
        for kind in CaseKind::ALL {
            assert_eq!(CaseKind::parse(kind.as_str()), Some(*kind));
        }
        for status in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(CaseStatus::parse("OPEN"), None);
    }
}
