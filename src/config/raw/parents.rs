//! `parents:` as written on a region, a branch or a device: a list of device names,
//! each with its place (a name's checks against the whole inventory come later, in
//! `load/build`, where every file is known).

use crate::config::error::Spanned;
use crate::config::walk::{Text, Walk, Walker};
use crate::config::yaml::Event;

/// The names of one `parents:` list in written order; None where the key is absent
/// (the level inherits), `Some(empty)` for `parents: []` (explicitly none).
pub type Parents<'a> = Option<Vec<Spanned<Text<'a>>>>;

/// The value of a `parents:` key: a list of names. Anything else in the list is
/// reported and skipped, as is a value that is not a list (the load then fails on it).
pub fn read<'a>(w: &mut Walker<'a, '_>) -> Walk<Parents<'a>> {
    let mut names = Vec::new();
    w.list("parents", |w, item| {
        match item {
            Event::Scalar(s) if s.is_null() || s.value.trim().is_empty() => {
                w.error(s.at, "parents: a parent's name is empty");
            }
            Event::Scalar(s) => names.push(Spanned {
                value: s.value,
                at: s.at,
            }),
            other => {
                let at = match &other {
                    Event::MappingStart(at) | Event::SequenceStart(at) => *at,
                    _ => Default::default(),
                };
                w.error(at, "parents: expected a device name, not a list or mapping");
                w.skip(other)?;
            }
        }
        Ok(())
    })?;
    Ok(Some(names))
}
