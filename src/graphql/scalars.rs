//! Scalars and small shared types of the schema.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;

use crate::models::page::Direction;
use crate::models::storable;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

/// A calendar date without a time or a time zone, written `YYYY-MM-DD` (`2026-03-31`).
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .filter(storable::date)
                .map(Date)
                .ok_or_else(|| {
                    InputValueError::custom("a Date is written YYYY-MM-DD, years 0000 to 9999")
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Which way a list is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum OrderDirection {
    /// Smallest first: A to Z, oldest first, lowest first.
    Asc,
    /// Largest first: Z to A, newest first, highest first.
    Desc,
}

impl From<OrderDirection> for Direction {
    fn from(value: OrderDirection) -> Self {
        match value {
            OrderDirection::Asc => Direction::Asc,
            OrderDirection::Desc => Direction::Desc,
        }
    }
}

/// A time range: `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, Default, async_graphql::InputObject)]
pub struct DateTimeRange {
    /// The earliest time in the range (inclusive); absent: no lower bound.
    #[graphql(validator(custom = "storable_time"))]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// The first time after the range (exclusive); absent: no upper bound.
    #[graphql(validator(custom = "storable_time"))]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// A `DateTime` argument's check: RFC 3339's years (the database's times end elsewhere).
pub fn storable_time(value: &chrono::DateTime<chrono::Utc>) -> Result<(), &'static str> {
    if storable::time(value) { Ok(()) } else { Err(storable::TIME_RULE) }
}

impl From<Option<DateTimeRange>> for crate::models::cases::list::TimeRange {
    fn from(value: Option<DateTimeRange>) -> Self {
        let value = value.unwrap_or_default();
        Self { from: value.from, to: value.to }
    }
}
