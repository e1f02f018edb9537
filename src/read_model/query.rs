//! The device list's query string: filters, order and paging, parsed strictly so that a
//! typo in a value is a 400 naming the parameter rather than a silently empty list.
//!
//! Text filters (`branch`, `q`) match a substring after Unicode case folding (full
//! folding, `unicase`'s tables: `ß` matches `ss`, Georgian Mtavruli `ᲗᲑᲘᲚᲘᲡᲘ` matches
//! Mkhedruli `თბილისი`, a final `ς` matches `σ`, which `to_lowercase` gets wrong); a
//! value written in double quotes (`branch="vake"`) is the exact, case-sensitive value,
//! which is what the pages' links to one branch use. `region` and `kind` are exact.

use std::cmp::Ordering;
use std::fmt::Write as _;

use unicase::UniCase;

use crate::config::Device;
use crate::state::{DeviceStatus, Status};

/// A parameter that could not be used, as `(parameter, message)`.
pub type ParamError = (&'static str, String);

/// A text filter as written: a case-folded substring, or an exact value in quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct TextFilter {
    /// What the client wrote (forms and links give it back unchanged).
    pub written: String,
    /// Without quotes: exact; otherwise case-folded.
    needle: String,
    exact: bool,
}

impl TextFilter {
    /// The filter for `value`; None for an empty one (no filter).
    pub fn parse(value: &str) -> Option<TextFilter> {
        if value.is_empty() {
            return None;
        }
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let (needle, exact) = if quoted {
            (value[1..value.len() - 1].to_string(), true)
        } else {
            (fold(value), false)
        };
        Some(TextFilter {
            written: value.to_string(),
            needle,
            exact,
        })
    }

    /// The exact-match filter for `value` (`"value"`), as a link to one branch writes it.
    pub fn exact(value: &str) -> TextFilter {
        TextFilter {
            written: format!("\"{value}\""),
            needle: value.to_string(),
            exact: true,
        }
    }

    pub fn matches(&self, have: &str) -> bool {
        if self.exact {
            have == self.needle
        } else {
            contains_folded(have, &self.needle)
        }
    }
}

/// `s` under Unicode full case folding (the form both sides of a match are compared in).
pub fn fold(s: &str) -> String {
    UniCase::new(s).to_folded_case()
}

/// A column the device list can be sorted by (`sort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Down first, the longest down first; then unreachable; then the rest by name.
    #[default]
    Status,
    Name,
    Address,
    /// Region, then branch.
    Region,
    Kind,
    /// `down_since` (down and unreachable devices), oldest first; the others after.
    Since,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Status,
        SortKey::Name,
        SortKey::Address,
        SortKey::Region,
        SortKey::Kind,
        SortKey::Since,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Status => "status",
            SortKey::Name => "name",
            SortKey::Address => "address",
            SortKey::Region => "region",
            SortKey::Kind => "kind",
            SortKey::Since => "since",
        }
    }

    fn parse(value: &str) -> Result<SortKey, ParamError> {
        SortKey::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                let known: Vec<&str> = SortKey::ALL.iter().map(|k| k.as_str()).collect();
                (
                    "sort",
                    format!("sort {value:?} is not one of {}", known.join(", ")),
                )
            })
    }

    /// How devices `a` and `b` compare under this key, `desc` reversing it. Ties are
    /// `Equal`: callers sort stably along the name order, so a tie is by name. Devices
    /// without a `down_since` sort after those with one in both directions.
    pub fn compare(
        self,
        desc: bool,
        (a, sa): (&Device, &DeviceStatus),
        (b, sb): (&Device, &DeviceStatus),
    ) -> Ordering {
        let o = match self {
            // The list order itself; callers do not sort by it.
            SortKey::Status => Ordering::Equal,
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Address => a.address.cmp(&b.address),
            SortKey::Region => (&a.region, &a.branch).cmp(&(&b.region, &b.branch)),
            SortKey::Kind => a.kind.cmp(&b.kind),
            SortKey::Since => {
                let since = |s: &DeviceStatus| {
                    matches!(s.status, Status::Down | Status::Unreachable)
                        .then_some(s.down_since)
                        .flatten()
                };
                match (since(sa), since(sb)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => return Ordering::Less,
                    (None, Some(_)) => return Ordering::Greater,
                    (None, None) => return Ordering::Equal,
                }
            }
        };
        if desc { o.reverse() } else { o }
    }
}

/// Filters, order and paging of `GET /api/v1/devices` and `/monitor`. Unknown
/// parameters are ignored (cache busters and the like).
#[derive(Debug, Default, PartialEq)]
pub struct ListQuery {
    /// Statuses to keep; empty keeps all.
    pub statuses: Vec<Status>,
    pub region: Option<String>,
    pub branch: Option<TextFilter>,
    pub kind: Option<String>,
    /// Searched in the name, the address and every label value.
    pub q: Option<TextFilter>,
    pub sort: SortKey,
    /// `dir=desc`.
    pub desc: bool,
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
                "branch" => out.branch = TextFilter::parse(&value),
                "kind" => out.kind = text,
                "q" => out.q = TextFilter::parse(&value),
                "sort" if !value.is_empty() => out.sort = SortKey::parse(&value)?,
                "dir" => {
                    out.desc = match &*value {
                        "" | "asc" => false,
                        "desc" => true,
                        other => {
                            return Err(("dir", format!("dir {other:?} is not asc or desc")));
                        }
                    }
                }
                "limit" => out.limit = Some(number("limit", &value)?),
                "offset" => out.offset = number("offset", &value)?,
                _ => {}
            }
        }
        Ok(out)
    }

    /// True if no filter but `status` is set (the totals then follow from the counts
    /// per status).
    pub fn status_only(&self) -> bool {
        self.region.is_none() && self.branch.is_none() && self.kind.is_none() && self.q.is_none()
    }

    /// True if `device` with `status` passes every filter. `scratch` is reused between
    /// calls to format addresses for `q` without allocating per device.
    pub fn matches(&self, device: &Device, status: Status, scratch: &mut String) -> bool {
        if !self.statuses.is_empty() && !self.statuses.contains(&status) {
            return false;
        }
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if !same(&self.region, &device.region)
            || !same(&self.kind, &device.kind)
            || !self
                .branch
                .as_ref()
                .is_none_or(|b| b.matches(&device.branch))
        {
            return false;
        }
        let Some(q) = &self.q else { return true };
        if q.matches(&device.name) || device.labels.iter().any(|(_, v)| q.matches(v)) {
            return true;
        }
        scratch.clear();
        let _ = write!(scratch, "{}", device.address);
        q.matches(scratch)
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

/// Substring test against an already folded `needle`; allocates only for non-ASCII
/// haystacks (an ASCII string folds to its ASCII lower case).
fn contains_folded(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        n.is_empty()
            || h.windows(n.len())
                .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
    } else {
        fold(haystack).contains(needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inventory;
    use crate::config::load::inventory_of;

    fn inventory() -> Inventory {
        inventory_of(
            "regions:\n  - name: tbilisi\n    branches:\n      - name: Vake-Central\n        devices:\n          - { name: vake-atm-1, address: 127.66.0.1, kind: atm, labels: { display_name: \"ვაკე ბანკომატი\" } }\n      - name: old-town\n        devices:\n          - { name: old-router-1, address: 127.66.0.2, kind: router, labels: { display_name: \"ᲗᲑᲘᲚᲘᲡᲘ ΟΔΟΣ\", street: Straße } }\n",
        )
    }

    fn kept(query: &str) -> Vec<String> {
        let inv = inventory();
        let q = ListQuery::parse(Some(query)).unwrap();
        let mut scratch = String::new();
        inv.devices
            .iter()
            .filter(|d| q.matches(d, Status::Up, &mut scratch))
            .map(|d| d.name.to_string())
            .collect()
    }

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
        assert_eq!(q.q.as_ref().map(|q| &*q.written), Some("ATM"));
        assert_eq!((q.limit, q.offset), (Some(5), 10));
        assert_eq!((q.sort, q.desc), (SortKey::Status, false));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, param) in [
            ("status=up,foo", "status"),
            ("limit=-1", "limit"),
            ("offset=x", "offset"),
            ("sort=rtt", "sort"),
            ("sort=Name", "sort"),
            ("dir=up", "dir"),
        ] {
            assert_eq!(
                ListQuery::parse(Some(query)).unwrap_err().0,
                param,
                "{query}"
            );
        }
        let (_, message) = ListQuery::parse(Some("sort=rtt")).unwrap_err();
        assert_eq!(
            message,
            "sort \"rtt\" is not one of status, name, address, region, kind, since"
        );
    }

    #[test]
    fn sort_and_direction_are_read() {
        let q = ListQuery::parse(Some("sort=since&dir=desc")).unwrap();
        assert_eq!((q.sort, q.desc), (SortKey::Since, true));
        let q = ListQuery::parse(Some("sort=&dir=")).unwrap();
        assert_eq!((q.sort, q.desc), (SortKey::Status, false));
    }

    #[test]
    fn empty_values_do_not_filter() {
        assert_eq!(
            ListQuery::parse(Some("region=&status=&q=&branch=")).unwrap(),
            ListQuery::default()
        );
    }

    #[test]
    fn search_ignores_case_including_non_ascii() {
        assert!(contains_folded("Vake-ATM-1", "atm-1"));
        assert!(!contains_folded("Vake-ATM-1", "atm-2"));
        assert!(contains_folded("ТБИЛИСИ-1", &fold("тбилиси")));
    }

    #[test]
    fn georgian_mtavruli_and_mkhedruli_fold_to_each_other() {
        // Mtavruli (capital, Unicode 11) and Mkhedruli: the same word either way round.
        assert!(
            TextFilter::parse("თბილისი")
                .unwrap()
                .matches("ᲗᲑᲘᲚᲘᲡᲘ ΟΔΟΣ")
        );
        assert!(TextFilter::parse("ᲗᲑᲘᲚ").unwrap().matches("ქ. თბილისი"));
        assert!(!TextFilter::parse("ბათუმი").unwrap().matches("ᲗᲑᲘᲚᲘᲡᲘ"));
        // What lower-casing alone gets wrong: ß is ss, a final sigma is a sigma.
        assert!(TextFilter::parse("STRASSE").unwrap().matches("Straße"));
        assert!(TextFilter::parse("οδοσ").unwrap().matches("ΟΔΟΣ"));
        assert_ne!(
            "ΟΔΟΣ".to_lowercase(),
            "οδοσ",
            "std's lower case is not a fold"
        );
    }

    #[test]
    fn branch_is_a_folded_substring_or_exact_in_quotes() {
        assert_eq!(kept("branch=vake"), ["vake-atm-1"]);
        assert_eq!(kept("branch=CENTRAL"), ["vake-atm-1"]);
        assert_eq!(kept("branch=-"), ["vake-atm-1", "old-router-1"]);
        assert_eq!(kept("branch=%22Vake-Central%22"), ["vake-atm-1"]);
        assert!(
            kept("branch=%22vake-central%22").is_empty(),
            "exact is exact"
        );
        assert!(
            kept("branch=%22Vake%22").is_empty(),
            "exact is the whole value"
        );
        assert_eq!(TextFilter::exact("a b").written, "\"a b\"");
        assert_eq!(
            TextFilter::exact("vake"),
            TextFilter::parse("\"vake\"").unwrap()
        );
        // A lone quote is text, not an empty exact value.
        assert!(TextFilter::parse("\"").unwrap().matches("a\"b"));
    }

    #[test]
    fn q_searches_name_address_and_label_values() {
        assert_eq!(kept("q=ATM"), ["vake-atm-1"]);
        assert_eq!(kept("q=127.66.0.2"), ["old-router-1"]);
        assert_eq!(kept("q=ვაკე"), ["vake-atm-1"], "a display name label");
        assert_eq!(
            kept("q=თბილისი"),
            ["old-router-1"],
            "Mkhedruli finds Mtavruli"
        );
        assert_eq!(kept("q=strasse"), ["old-router-1"], "any label value");
        assert!(
            kept("q=display_name").is_empty(),
            "label keys are not searched"
        );
        assert_eq!(kept("q=%22old-router-1%22"), ["old-router-1"]);
        assert!(kept("q=%22old-router%22").is_empty());
    }
}
