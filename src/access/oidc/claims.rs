//! What a provider's claims give: the user's name, the highest role any value of the
//! role claim is mapped to (none: refused), and the regions of the regions claim.

use std::collections::HashMap;

use serde_json::Value;

use super::OidcError;
use crate::access::{Role, Scope};
use crate::config::settings::OidcSettings;

/// The user name, role and scope `claims` give under the settings.
pub(super) fn map(
    s: &OidcSettings,
    claims: &HashMap<String, Value>,
) -> Result<(String, Role, Scope), OidcError> {
    let user = claims
        .get(&s.username_claim)
        .and_then(Value::as_str)
        .or_else(|| claims.get("sub").and_then(Value::as_str))
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect::<String>();
    if user.is_empty() {
        return Err(OidcError::Invalid("the ID token names no user".into()));
    }
    let values = strings(claims.get(&s.role_claim));
    // `roles` is sorted highest first: the first match is the highest role.
    let role = s
        .roles
        .iter()
        .find(|(_, wanted)| wanted.iter().any(|w| values.contains(w)))
        .map(|(r, _)| *r)
        .ok_or_else(|| OidcError::NoRole(user.clone(), s.role_claim.clone()))?;
    let scope = match &s.regions_claim {
        None => Scope::all(),
        Some(name) => match claims.get(name) {
            None | Some(Value::Null) => {
                return Err(OidcError::NoRegions(user, name.clone()));
            }
            Some(v) => {
                let regions = strings(Some(v));
                if regions.iter().any(|r| r == "*") {
                    Scope::all()
                } else {
                    Scope::regions(regions)
                }
            }
        },
    };
    Ok((user, role, scope))
}

/// A claim as a list of strings: a string is a list of one; anything else is none.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::settings;
    use super::*;

    fn claims(v: Value) -> HashMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_highest_matching_role_wins_and_no_match_is_refused() {
        let o = settings(None);
        let (u, r, s) = map(&o, &claims(serde_json::json!({"sub": "1", "preferred_username": "nino", "groups": ["noc", "noc-operators"]})))
            .unwrap();
        assert_eq!((u.as_str(), r), ("nino", Role::Operator));
        assert!(s.is_all());
        let (u, r, _) = map(
            &o,
            &claims(serde_json::json!({"sub": "2", "groups": "noc-admins"})),
        )
        .unwrap();
        assert_eq!(
            (u.as_str(), r),
            ("2", Role::Admin),
            "sub when no username claim"
        );
        let e = map(
            &o,
            &claims(serde_json::json!({"sub": "3", "groups": ["sales"]})),
        )
        .unwrap_err();
        assert!(matches!(e, OidcError::NoRole(..)), "{e}");
        let e = map(&o, &claims(serde_json::json!({"sub": "4"}))).unwrap_err();
        assert!(matches!(e, OidcError::NoRole(..)), "{e}");
    }

    #[test]
    fn regions_come_from_their_claim_and_its_absence_refuses() {
        let o = settings(Some("regions"));
        let (_, _, s) = map(
            &o,
            &claims(serde_json::json!({"sub": "1", "groups": "noc", "regions": ["east"]})),
        )
        .unwrap();
        assert!(s.allows("east") && !s.allows("west"));
        let (_, _, s) = map(
            &o,
            &claims(serde_json::json!({"sub": "1", "groups": "noc", "regions": ["*"]})),
        )
        .unwrap();
        assert!(s.is_all());
        let e = map(
            &o,
            &claims(serde_json::json!({"sub": "1", "groups": "noc"})),
        )
        .unwrap_err();
        assert!(matches!(e, OidcError::NoRegions(..)), "{e}");
    }
}
