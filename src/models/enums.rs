//! The domain's closed sets of values. Each is a GraphQL enum and is stored as its
//! GraphQL name (text columns with CHECK constraints), except severities, which are
//! stored as ranks so that they order and compare.
//!
//! Stored values fail closed: every enum reads and writes its column through a typed
//! diesel `FromSql`/`ToSql`, and a value this build does not know is a deserialization
//! error (a logged `INTERNAL`), never a default that could reopen what was closed.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::SmallInt;

/// Implements diesel's `FromSql`/`ToSql` on a text column for an enum with `as_str` and
/// `parse`: an unknown stored name fails to decode.
macro_rules! stored_as_text {
    ($name:ident) => {
        impl $name {
            /// The value of a stored name, or an error for a name this build does not know.
            pub fn from_stored(text: &str) -> diesel::deserialize::Result<Self> {
                $name::parse(text).ok_or_else(|| {
                    format!(concat!("unknown stored ", stringify!($name), " {:?}"), text).into()
                })
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                $name::from_stored(std::str::from_utf8(value.as_bytes())?)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }
    };
}

/// Defines an enum whose stored text is its GraphQL name.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
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

        $crate::models::enums::stored_as_text!($name);
    };
}
pub(crate) use {stored_as_text, text_enum};

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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    async_graphql::Enum,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = SmallInt)]
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

impl Severity {
    /// The severity of a stored rank of 1–5; any other rank is an error.
    pub fn from_stored(rank: i16) -> deserialize::Result<Self> {
        Severity::from_rank(rank)
            .ok_or_else(|| format!("unknown stored severity rank {rank}").into())
    }
}

/// A stored rank of 1–5 reads as its severity; anything else fails to decode.
impl FromSql<SmallInt, Pg> for Severity {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Severity::from_stored(<i16 as FromSql<SmallInt, Pg>>::from_sql(value)?)
    }
}

impl ToSql<SmallInt, Pg> for Severity {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <i16 as ToSql<SmallInt, Pg>>::to_sql(&self.rank(), &mut out.reborrow())
    }
}

/// A case's stored severity rank: 0 is none, 1–5 a severity, anything else fails to decode.
/// Read through `#[diesel(deserialize_as = SeverityRank)]` into an `Option<Severity>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub struct SeverityRank(pub Option<Severity>);

impl SeverityRank {
    /// 0 is none, 1–5 a severity; any other rank is an error.
    pub fn from_stored(rank: i16) -> deserialize::Result<Self> {
        match rank {
            0 => Ok(SeverityRank(None)),
            rank => Severity::from_stored(rank).map(|s| SeverityRank(Some(s))),
        }
    }
}

impl FromSql<SmallInt, Pg> for SeverityRank {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        SeverityRank::from_stored(<i16 as FromSql<SmallInt, Pg>>::from_sql(value)?)
    }
}

impl From<SeverityRank> for Option<Severity> {
    fn from(rank: SeverityRank) -> Self {
        rank.0
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

    #[test]
    fn unknown_stored_values_fail_to_decode_instead_of_defaulting() {
        for status in CaseStatus::ALL {
            assert_eq!(CaseStatus::from_stored(status.as_str()).ok(), Some(*status));
        }
        assert!(CaseStatus::from_stored("REOPENED").is_err());
        assert!(CaseStatus::from_stored("new").is_err(), "names are exact");
        assert!(CaseStatus::from_stored("").is_err());
        assert!(CaseKind::from_stored("SELF_MANAGED_V2").is_err());
        assert!(Resolution::from_stored("WONT_FIX").is_err());
        assert!(DetectionSource::from_stored("EDR").is_err());
        assert!(FileAvailability::from_stored("MAYBE").is_err());
        let message = CaseStatus::from_stored("REOPENED").err().map(|e| e.to_string());
        assert_eq!(message.as_deref(), Some("unknown stored CaseStatus \"REOPENED\""));
    }

    #[test]
    fn unknown_stored_severity_ranks_fail_to_decode() {
        assert_eq!(Severity::from_stored(5).ok(), Some(Severity::Critical));
        assert!(Severity::from_stored(0).is_err(), "a detection always has a severity");
        assert!(Severity::from_stored(6).is_err());
        assert!(Severity::from_stored(-1).is_err());
        assert_eq!(SeverityRank::from_stored(0).ok(), Some(SeverityRank(None)));
        assert_eq!(
            SeverityRank::from_stored(1).ok(),
            Some(SeverityRank(Some(Severity::Informational)))
        );
        assert!(SeverityRank::from_stored(9).is_err());
    }
}
