//! Which receivers get a notice, grouped how: the routes of the settings, first match
//! wins, `continue: true` goes on; Alertmanager receivers get every notice (they route
//! and group on their own). A receiver gets a notice at most once, by the first route
//! that sends it there.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::settings::notify::{GroupBy, Matcher, NotifySettings, ReceiverKind, Route};

use super::Notice;

/// How one receiver groups the notices one route sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub group_by: Vec<GroupBy>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    /// None: never repeated (Alertmanager receivers resend on their own).
    pub repeat_interval: Option<Duration>,
    pub send_resolved: bool,
}

impl Policy {
    /// An Alertmanager receiver's: whatever is pending goes at once, as one message.
    pub fn immediate() -> Policy {
        Policy {
            group_by: Vec::new(),
            group_wait: Duration::ZERO,
            group_interval: Duration::ZERO,
            repeat_interval: None,
            send_resolved: true,
        }
    }

    fn of(route: &Route) -> Policy {
        Policy {
            group_by: route.group_by.clone(),
            group_wait: route.group_wait,
            group_interval: route.group_interval,
            repeat_interval: Some(route.repeat_interval),
            send_resolved: route.send_resolved,
        }
    }

    /// The group a notice falls in: its values of `group_by` (a label it lacks: "").
    pub fn group_of(&self, n: &Notice) -> BTreeMap<String, String> {
        self.group_by
            .iter()
            .map(|g| {
                let value = match g {
                    GroupBy::Region => n.region.clone(),
                    GroupBy::Branch => n.branch.clone(),
                    GroupBy::Kind => n.kind.clone(),
                    GroupBy::Severity => n.severity.clone(),
                    GroupBy::Condition => n.condition.clone(),
                    GroupBy::Device => n.device.clone(),
                    GroupBy::Label(l) => n.labels.get(l).cloned().unwrap_or_default(),
                };
                (g.name(), value)
            })
            .collect()
    }
}

/// The routes, resolved to receiver indexes.
#[derive(Debug, Clone)]
pub struct Router {
    receivers: Vec<String>,
    alertmanagers: Vec<usize>,
    routes: Vec<(Matcher, Vec<usize>, bool, usize)>,
    policies: Vec<Policy>,
}

/// Where a notice goes: a receiver (by index) and the policy (by index) it is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub receiver: usize,
    pub policy: usize,
}

impl Router {
    pub fn new(settings: &NotifySettings) -> Router {
        let receivers: Vec<String> = settings.receivers.iter().map(|r| r.name.clone()).collect();
        let alertmanagers = settings
            .receivers
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.kind, ReceiverKind::Alertmanager(_)))
            .map(|(i, _)| i)
            .collect();
        // Policy 0 is the Alertmanagers'; route i's is i + 1.
        let mut policies = vec![Policy::immediate()];
        let mut routes = Vec::new();
        for route in &settings.routes {
            let targets = route
                .receivers
                .iter()
                .filter_map(|name| receivers.iter().position(|r| r == name))
                .collect();
            policies.push(Policy::of(route));
            routes.push((
                route.matcher.clone(),
                targets,
                route.continue_matching,
                policies.len() - 1,
            ));
        }
        Router {
            receivers,
            alertmanagers,
            routes,
            policies,
        }
    }

    pub fn receivers(&self) -> &[String] {
        &self.receivers
    }

    pub fn policy(&self, i: usize) -> &Policy {
        &self.policies[i]
    }

    /// Every receiver the notice goes to, each once, in the order routes name them.
    pub fn targets(&self, n: &Notice) -> Vec<Target> {
        let mut out: Vec<Target> = self
            .alertmanagers
            .iter()
            .map(|&receiver| Target {
                receiver,
                policy: 0,
            })
            .collect();
        for (matcher, receivers, go_on, policy) in &self.routes {
            if !matches(matcher, n) {
                continue;
            }
            for &receiver in receivers {
                if !out.iter().any(|t| t.receiver == receiver) {
                    out.push(Target {
                        receiver,
                        policy: *policy,
                    });
                }
            }
            if !go_on {
                break;
            }
        }
        out
    }
}

/// Every field of the matcher that is given matches (a list: any of its values).
pub fn matches(m: &Matcher, n: &Notice) -> bool {
    let field = |want: &[String], have: &str| want.is_empty() || want.iter().any(|w| w == have);
    field(&m.region, &n.region)
        && field(&m.branch, &n.branch)
        && field(&m.kind, &n.kind)
        && field(&m.severity, &n.severity)
        && field(&m.condition, &n.condition)
        && field(&m.device, &n.device)
        && m.labels.iter().all(|(label, want)| {
            n.labels
                .get(label)
                .is_some_and(|have| want.is_empty() || want.iter().any(|w| w == have))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::tests::parse;
    use crate::notify::test_notice;

    fn router(routes: &str) -> Router {
        let text = format!(
            "notifications:
  receivers:
    - {{ name: am, alertmanager: {{ urls: http://127.0.0.1:9093 }} }}
    - {{ name: a, webhook: {{ url: http://127.0.0.1:1/ }} }}
    - {{ name: b, webhook: {{ url: http://127.0.0.1:2/ }} }}
  routes:
{routes}"
        );
        Router::new(&parse(&text).unwrap().notifications)
    }

    fn names(r: &Router, n: &Notice) -> Vec<String> {
        r.targets(n)
            .iter()
            .map(|t| r.receivers()[t.receiver].clone())
            .collect()
    }

    #[test]
    fn first_match_wins_unless_it_continues_and_alertmanagers_get_everything() {
        let r = router(
            "    - { receivers: [a], match: { region: east, labels: { tier: [gold, silver] } } }
    - { receivers: [b], match: { severity: critical } }
    - { receivers: [a, b] }
",
        );
        let mut n = test_notice(1, "d1");
        n.region = "east".into();
        n.labels.insert("tier".into(), "gold".into());
        assert_eq!(names(&r, &n), ["am", "a"]);
        n.labels.insert("tier".into(), "bronze".into());
        assert_eq!(names(&r, &n), ["am", "b"], "critical, not gold");
        n.severity = "warning".into();
        assert_eq!(names(&r, &n), ["am", "a", "b"], "the catch-all");
        let c = router(
            "    - { receivers: [a], continue: true }
    - { receivers: [a, b] }
",
        );
        let t = c.targets(&n);
        assert_eq!(names(&c, &n), ["am", "a", "b"], "each receiver once");
        assert_eq!((t[1].policy, t[2].policy), (1, 2), "a by the first route");
    }

    #[test]
    fn groups_are_the_group_by_values() {
        let r = router("    - { receivers: [a], group_by: [region, labels.tier] }\n");
        let n = test_notice(1, "d1");
        let group = r.policy(1).group_of(&n);
        assert_eq!(
            group.into_iter().collect::<Vec<_>>(),
            [
                ("labels.tier".to_string(), String::new()),
                ("region".to_string(), "east".to_string())
            ]
        );
        assert!(r.policy(0).group_of(&n).is_empty());
    }
}
