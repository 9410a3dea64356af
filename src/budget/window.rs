//! Budget windows live in the ledger key (`day:2026-11-25`), so nothing resets them: a new window
//! is simply a new key.

use time::{Date, Duration, Month, OffsetDateTime, Time};

/// How long a budget's money lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// One agent run (`GATEHOUSE_EXECUTION_ID`).
    Execution,
    /// A clock hour (UTC).
    Hour,
    /// A calendar day (UTC).
    Day,
    /// A calendar month (UTC).
    Month,
    /// Forever.
    Total,
}

impl Window {
    /// The window of a config name.
    pub fn parse(name: &str) -> Option<Window> {
        match name {
            "execution" => Some(Window::Execution),
            "hour" => Some(Window::Hour),
            "day" => Some(Window::Day),
            "month" => Some(Window::Month),
            "total" => Some(Window::Total),
            _ => None,
        }
    }

    /// The name config and records use.
    pub fn name(self) -> &'static str {
        match self {
            Window::Execution => "execution",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
            Window::Total => "total",
        }
    }

    /// The ledger key of the window `now` falls in (`execution` names the agent run).
    pub fn key(self, now: OffsetDateTime, execution: Option<&str>) -> String {
        let (y, m, d, h) = (now.year(), u8::from(now.month()), now.day(), now.hour());
        match self {
            Window::Execution => format!("execution:{}", execution.unwrap_or("-")),
            Window::Hour => format!("hour:{y:04}-{m:02}-{d:02}T{h:02}"),
            Window::Day => format!("day:{y:04}-{m:02}-{d:02}"),
            Window::Month => format!("month:{y:04}-{m:02}"),
            Window::Total => "total".to_string(),
        }
    }

    /// The prefix of the UTC hours (`2026-11-25T18`) the window `now` falls in covers; `None`
    /// for `execution`, which is not a span of time.
    pub fn hour_prefix(self, now: OffsetDateTime) -> Option<String> {
        let (y, m, d, h) = (now.year(), u8::from(now.month()), now.day(), now.hour());
        match self {
            Window::Execution => None,
            Window::Hour => Some(format!("{y:04}-{m:02}-{d:02}T{h:02}")),
            Window::Day => Some(format!("{y:04}-{m:02}-{d:02}")),
            Window::Month => Some(format!("{y:04}-{m:02}")),
            Window::Total => Some(String::new()),
        }
    }

    /// Seconds until the window `now` falls in ends (`None`: it never resets by time).
    pub fn seconds_left(self, now: OffsetDateTime) -> Option<u64> {
        let start_of_day = OffsetDateTime::new_utc(now.date(), Time::MIDNIGHT);
        let end = match self {
            Window::Execution | Window::Total => return None,
            Window::Hour => {
                OffsetDateTime::new_utc(now.date(), Time::from_hms(now.hour(), 0, 0).ok()?)
                    + Duration::HOUR
            }
            Window::Day => start_of_day + Duration::DAY,
            Window::Month => {
                let (year, month) = match now.month() {
                    Month::December => (now.year() + 1, Month::January),
                    m => (now.year(), m.next()),
                };
                OffsetDateTime::new_utc(
                    Date::from_calendar_date(year, month, 1).ok()?,
                    Time::MIDNIGHT,
                )
            }
        };
        u64::try_from((end - now).whole_seconds().max(1)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn keys_and_resets_follow_the_calendar() {
        let now = datetime!(2026-12-31 23:30:15 UTC);
        assert_eq!(Window::Hour.key(now, None), "hour:2026-12-31T23");
        assert_eq!(Window::Day.key(now, None), "day:2026-12-31");
        assert_eq!(Window::Month.key(now, None), "month:2026-12");
        assert_eq!(Window::Total.key(now, None), "total");
        assert_eq!(
            Window::Execution.key(now, Some("exec-7")),
            "execution:exec-7"
        );
        assert_eq!(Window::Hour.seconds_left(now), Some(29 * 60 + 45));
        assert_eq!(Window::Day.seconds_left(now), Some(29 * 60 + 45));
        assert_eq!(Window::Month.seconds_left(now), Some(29 * 60 + 45));
        assert_eq!(Window::Total.seconds_left(now), None);
    }
}
