//! The device list's query string: filters and paging, parsed strictly so that a typo
//! in a value is a 400 naming the parameter rather than a silently empty list.

use std::fmt::Write as _;

use crate::config::Device;
use crate::state::Status;

/// A parameter that could not be used, as `(parameter, message)`.
pub type ParamError = (&'static str, String);

/// Filters and paging of `GET /api/v1/devices`. Unknown parameters are ignored
/// (cache busters and the like).
#[derive(Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Statuses to keep; empty keeps all.
    pub statuses: Vec<Status>,
    pub region: Option<String>,
    pub branch: Option<String>,
    pub kind: Option<String>,
    /// Lower-cased search text.
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

impl ListQuery {
    pub fn parse(query: Option<&str>) -> Result<ListQuery, ParamError> {
        let mut out = ListQuery::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            // An empty value means "no filter", as an HTML form with an empty field sends.
            let text = Some(value.to_string()).filter(|v| !v.is_empty());
            match &*key {
                "status" => {
                    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let status = Status::parse(item).ok_or_else(|| {
                            (
                                "status",
                                format!(
                                    "status {item:?} is not one of up, down, unreachable, unknown"
                                ),
                            )
                        })?;
                        if !out.statuses.contains(&status) {
                            out.statuses.push(status);
                        }
                    }
                }
                "region" => out.region = text,
                "branch" => out.branch = text,
                "kind" => out.kind = text,
                "q" => out.q = text.map(|q| q.to_lowercase()),
                "limit" => out.limit = Some(number("limit", &value)?),
                "offset" => out.offset = number("offset", &value)?,
                _ => {}
            }
        }
        Ok(out)
    }

    /// True if `device` with `status` passes every filter. `scratch` is reused between
    /// calls to format addresses for `q` without allocating per device.
    pub fn matches(&self, device: &Device, status: Status, scratch: &mut String) -> bool {
        if !self.statuses.is_empty() && !self.statuses.contains(&status) {
            return false;
        }
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if !same(&self.region, &device.region)
            || !same(&self.branch, &device.branch)
            || !same(&self.kind, &device.kind)
        {
            return false;
        }
        let Some(q) = &self.q else { return true };
        if contains_ignore_case(&device.name, q) {
            return true;
        }
        scratch.clear();
        let _ = write!(scratch, "{}", device.address);
        contains_ignore_case(scratch, q)
    }
}

fn number(name: &'static str, value: &str) -> Result<usize, ParamError> {
    value.trim().parse().map_err(|_| {
        (
            name,
            format!("{name} {value:?} is not a non-negative integer"),
        )
    })
}

/// Case-insensitive substring test against an already lower-cased `needle`; allocates
/// only for non-ASCII haystacks.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        n.is_empty()
            || h.windows(n.len())
                .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_paging() {
        let q = ListQuery::parse(Some(
            "status=down,unknown,unreachable&region=West%20Side&q=ATM&limit=5&offset=10&_=1",
        ))
        .unwrap();
        assert_eq!(
            q.statuses,
            vec![Status::Down, Status::Unknown, Status::Unreachable]
        );
        assert_eq!(q.region.as_deref(), Some("West Side"));
        assert_eq!(q.q.as_deref(), Some("atm"));
        assert_eq!((q.limit, q.offset), (Some(5), 10));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        assert_eq!(
            ListQuery::parse(Some("status=up,foo")).unwrap_err().0,
            "status"
        );
        assert_eq!(ListQuery::parse(Some("limit=-1")).unwrap_err().0, "limit");
        assert_eq!(ListQuery::parse(Some("offset=x")).unwrap_err().0, "offset");
    }

    #[test]
    fn empty_values_do_not_filter() {
        assert_eq!(
            ListQuery::parse(Some("region=&status=&q=")).unwrap(),
            ListQuery::default()
        );
    }

    #[test]
    fn search_ignores_case_including_non_ascii() {
        assert!(contains_ignore_case("Vake-ATM-1", "atm-1"));
        assert!(!contains_ignore_case("Vake-ATM-1", "atm-2"));
        assert!(contains_ignore_case("ТБИЛИСИ-1", &"тбилиси".to_lowercase()));
    }
}
