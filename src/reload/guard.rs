//! The mass-removal guard: a reload that would remove more than
//! `reload.max_removed_share` of the running devices is refused.
//!
//! A file written in place by a tool that stops half-way, a checkout interrupted, a
//! mount half-synced: each reads as a valid inventory with many devices missing, and
//! applying it would drop their state (status, `down_since`, streaks). Removing that
//! many devices on purpose is rare enough to ask for a setting, or a few steps.

use std::path::Path;

use super::Diff;
use crate::config::{ConfigError, Place};

/// The error refusing `diff`, if it removes more than `max_share` of `running` devices.
pub fn mass_removal(
    dir: &Path,
    diff: &Diff,
    running: usize,
    max_share: f64,
) -> Option<ConfigError> {
    if running == 0 || diff.removed as f64 <= max_share * running as f64 {
        return None;
    }
    let message = format!(
        "this reload would remove {} of the {running} running devices ({:.0}%), more than reload.max_removed_share ({:.0}%) allows; refused, the running inventory stays (if it is meant, raise reload.max_removed_share or remove them in smaller steps)",
        diff.removed,
        100.0 * diff.removed as f64 / running as f64,
        100.0 * max_share,
    );
    Some(ConfigError::new(Place::of_file(dir), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removing(removed: usize) -> Diff {
        Diff {
            removed,
            ..Diff::default()
        }
    }

    #[test]
    fn more_than_the_share_is_refused_and_up_to_it_is_not() {
        let dir = Path::new("inventory");
        assert!(mass_removal(dir, &removing(100), 200, 0.5).is_none());
        let refused = mass_removal(dir, &removing(101), 200, 0.5).unwrap();
        assert!(
            refused.to_string().starts_with(
                "inventory: this reload would remove 101 of the 200 running devices (50%)"
            ),
            "{refused}"
        );
        assert!(mass_removal(dir, &removing(200), 200, 1.0).is_none());
        assert!(mass_removal(dir, &removing(1), 200, 0.0).is_some());
        assert!(mass_removal(dir, &removing(0), 0, 0.0).is_none());
    }
}
