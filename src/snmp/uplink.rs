//! Which interface is an uplink. The inventory names it per device (by ifName, ifDescr,
//! ifAlias or ifIndex) or, for a whole region, by rules over ifAlias: the bank's routers
//! carry the ISP in the description an engineer typed (`MAGTI-uplink`, `to Silknet`), so
//! a pattern like `*MAGTI*` finds it without listing every router. Pure functions.

use super::Interface;

/// How an uplink's interface is named in the inventory. Names match exactly: `Gi0/0` is
/// not `Gi0/0.100`, and a wrong match would report the wrong line's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Name(String),
    Descr(String),
    Alias(String),
    Index(u32),
}

/// The interface `matcher` names; the lowest ifIndex if several do (two interfaces with
/// one alias), so the pick is the same on every poll.
pub fn pick<'a>(interfaces: &'a [Interface], matcher: &Matcher) -> Option<&'a Interface> {
    let is = |field: &Option<String>, want: &str| field.as_deref() == Some(want);
    interfaces
        .iter()
        .filter(|i| match matcher {
            Matcher::Name(n) => is(&i.name, n),
            Matcher::Descr(d) => is(&i.descr, d),
            Matcher::Alias(a) => is(&i.alias, a),
            Matcher::Index(x) => i.index == *x,
        })
        .min_by_key(|i| i.index)
}

/// An ifAlias pattern and the ISP it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRule {
    pattern: Vec<char>,
    pub isp: String,
}

impl AliasRule {
    /// `pattern` is glob-like: `*` is any run of characters, `?` any one, the rest
    /// literal; case is ignored (aliases are typed by hand: `Magti`, `MAGTI`).
    pub fn new(pattern: &str, isp: &str) -> AliasRule {
        AliasRule {
            pattern: fold(pattern),
            isp: isp.to_string(),
        }
    }

    pub fn matches(&self, alias: &str) -> bool {
        glob(&self.pattern, &fold(alias))
    }
}

/// The ISP of the first rule that matches `alias`; rules are in the inventory's order,
/// so a specific rule placed first wins over a broad one.
pub fn isp_for_alias<'a>(rules: &'a [AliasRule], alias: &str) -> Option<&'a str> {
    rules
        .iter()
        .find(|r| r.matches(alias))
        .map(|r| r.isp.as_str())
}

fn fold(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Wildcard match with one backtrack point (the last `*`): linear in practice and never
/// exponential, whatever the pattern (an inventory is not trusted to be kind).
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and try again from there.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::{AdminStatus, OperStatus};

    fn iface(index: u32, name: &str, descr: &str, alias: &str) -> Interface {
        Interface {
            index,
            name: Some(name.to_string()),
            descr: Some(descr.to_string()),
            alias: Some(alias.to_string()),
            admin: Some(AdminStatus::Up),
            oper: Some(OperStatus::Up),
            in_octets: None,
            out_octets: None,
        }
    }

    fn router() -> Vec<Interface> {
        vec![
            iface(1, "Gi0/0", "GigabitEthernet0/0", "MAGTI-uplink"),
            iface(2, "Gi0/1", "GigabitEthernet0/1", "SILKNET-uplink"),
            iface(3, "Gi0/0.100", "GigabitEthernet0/0.100", "MAGTI-uplink"),
        ]
    }

    #[test]
    fn picks_by_each_key_exactly() {
        let r = router();
        assert_eq!(pick(&r, &Matcher::Name("Gi0/1".into())).unwrap().index, 2);
        assert_eq!(
            pick(&r, &Matcher::Descr("GigabitEthernet0/0".into()))
                .unwrap()
                .index,
            1
        );
        assert_eq!(
            pick(&r, &Matcher::Index(3)).unwrap().name.as_deref(),
            Some("Gi0/0.100")
        );
        // Two interfaces share the alias: the lowest ifIndex, every time.
        assert_eq!(
            pick(&r, &Matcher::Alias("MAGTI-uplink".into()))
                .unwrap()
                .index,
            1
        );
        assert!(pick(&r, &Matcher::Name("gi0/0".into())).is_none());
        assert!(pick(&r, &Matcher::Alias("MAGTI".into())).is_none());
        assert!(pick(&r, &Matcher::Index(9)).is_none());
        assert!(pick(&[], &Matcher::Index(1)).is_none());
    }

    #[test]
    fn alias_rules_map_to_isps_case_insensitively_first_match_wins() {
        let rules = vec![
            AliasRule::new("*backup*magti*", "Magti LTE"),
            AliasRule::new("*MAGTI*", "Magti"),
            AliasRule::new("*silknet*", "Silknet"),
            AliasRule::new("isp-?", "Other"),
        ];
        assert_eq!(isp_for_alias(&rules, "MAGTI-uplink"), Some("Magti"));
        assert_eq!(isp_for_alias(&rules, "to magti"), Some("Magti"));
        assert_eq!(isp_for_alias(&rules, "Backup via Magti"), Some("Magti LTE"));
        assert_eq!(isp_for_alias(&rules, "SILKNET-uplink"), Some("Silknet"));
        assert_eq!(isp_for_alias(&rules, "ISP-7"), Some("Other"));
        assert_eq!(isp_for_alias(&rules, "ISP-77"), None);
        assert_eq!(isp_for_alias(&rules, ""), None);
        assert_eq!(isp_for_alias(&[], "MAGTI"), None);
    }

    #[test]
    fn glob_edges() {
        let m = |p: &str, t: &str| AliasRule::new(p, "x").matches(t);
        assert!(m("*", ""));
        assert!(m("**", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(m("*a*a*a*a*b", &"a".repeat(40).replace("aaaa", "aaab")));
        // A pathological pattern stays fast (one backtrack point).
        assert!(!m(&"*a".repeat(50), &"a".repeat(49)));
        assert!(m("ÄPFEL*", "äpfel-line"));
    }
}
