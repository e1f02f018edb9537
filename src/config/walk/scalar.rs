//! Single values: text, numbers and yes/no, each with its place, null read as absent
//! where a key is optional, and a list or mapping where a value belongs reported as
//! `key: expected a single value, not a list or mapping`.

use std::str::FromStr;

use super::{Text, Walk, Walker, start_of};
use crate::config::error::Spanned;
use crate::config::yaml::{Event, Scalar};

impl<'a> Walker<'a, '_> {
    /// A required single value; null is an error.
    pub fn text(&mut self, key: &str) -> Walk<Option<Spanned<Text<'a>>>> {
        match self.scalar(key)? {
            Some(s) if s.is_null() => {
                self.error(s.at, format!("{key}: expected a value, found nothing"));
                Ok(None)
            }
            other => Ok(other.map(spanned)),
        }
    }

    /// An optional single value; null reads as absent.
    pub fn optional_text(&mut self, key: &str) -> Walk<Option<Spanned<Text<'a>>>> {
        Ok(self.scalar(key)?.filter(|s| !s.is_null()).map(spanned))
    }

    /// [`Self::optional_text`], copied out of the file.
    pub fn optional_string(&mut self, key: &str) -> Walk<Option<Spanned<String>>> {
        Ok(self.optional_text(key)?.map(|t| Spanned {
            value: t.value.into_owned(),
            at: t.at,
        }))
    }

    /// An optional number, written plain or quoted; null reads as absent.
    pub fn number<T: FromStr>(&mut self, key: &str, what: &str) -> Walk<Option<Spanned<T>>> {
        let Some(text) = self.optional_text(key)? else {
            return Ok(None);
        };
        match text.value.trim().parse() {
            Ok(value) => Ok(Some(Spanned { value, at: text.at })),
            Err(_) => {
                let message = format!("{key}: expected {what}, found {:?}", text.value);
                self.error(text.at, message);
                Ok(None)
            }
        }
    }

    /// An optional yes or no, plain or quoted, in any case: `true`, `yes`, `y`, `on` or
    /// `false`, `no`, `n`, `off` (YAML 1.1's words, which the settings always took);
    /// null reads as absent.
    pub fn boolean(&mut self, key: &str) -> Walk<Option<Spanned<bool>>> {
        let Some(text) = self.optional_text(key)? else {
            return Ok(None);
        };
        let word = text.value.trim();
        let is = |words: [&str; 4]| words.iter().any(|w| w.eq_ignore_ascii_case(word));
        let value = if is(["true", "yes", "y", "on"]) {
            true
        } else if is(["false", "no", "n", "off"]) {
            false
        } else {
            let message = format!("{key}: expected true or false, found {:?}", text.value);
            self.error(text.at, message);
            return Ok(None);
        };
        Ok(Some(Spanned { value, at: text.at }))
    }

    /// The next node if it is a single value; otherwise reports and skips it.
    pub fn scalar(&mut self, key: &str) -> Walk<Option<Scalar<'a>>> {
        match self.next()? {
            Event::Scalar(s) => Ok(Some(s)),
            other => {
                let message = format!("{key}: expected a single value, not a list or mapping");
                self.error(start_of(&other), message);
                self.skip(other)?;
                Ok(None)
            }
        }
    }
}

fn spanned(s: Scalar<'_>) -> Spanned<Text<'_>> {
    Spanned {
        value: s.value,
        at: s.at,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What `read` makes of `value` written as `k: value`, and the errors as text.
    fn read<T>(
        value: &str,
        read: impl FnOnce(&mut Walker<'_, '_>) -> Walk<T>,
    ) -> (Option<T>, Vec<String>) {
        let (text, mut errors, mut out) = (format!("k: {value}\n"), Vec::new(), None);
        let mut read = Some(read);
        let _ = Walker::new(&text, Path::new("f.yaml"), &mut errors).document(|w, first| {
            w.open_mapping(None, first)?;
            w.mapping("test", &["k"], |w, _| {
                out = Some(read.take().expect("one key")(w)?);
                Ok(())
            })
        });
        (out, errors.iter().map(ToString::to_string).collect())
    }

    fn boolean(value: &str) -> (Option<bool>, Vec<String>) {
        let (b, errors) = read(value, |w| w.boolean("k"));
        (b.flatten().map(|b| b.value), errors)
    }

    #[test]
    fn yes_and_no_are_read_in_yaml_1_1_words_in_any_case_quoted_or_not() {
        for yes in ["true", "True", "yes", "Y", "on", "\"true\"", "'yes'"] {
            assert_eq!(boolean(yes), (Some(true), vec![]), "{yes}");
        }
        for no in ["false", "FALSE", "no", "n", "Off"] {
            assert_eq!(boolean(no), (Some(false), vec![]), "{no}");
        }
        assert_eq!(boolean("~"), (None, vec![]));
        assert_eq!(
            boolean("1"),
            (
                None,
                vec!["f.yaml:1:4: k: expected true or false, found \"1\"".to_string()]
            )
        );
    }

    #[test]
    fn numbers_may_be_quoted_and_must_fit_their_type() {
        let number = |value| {
            let (n, errors) = read(value, |w| w.number::<u32>("k", "a whole number"));
            (n.flatten().map(|n| n.value), errors)
        };
        assert_eq!(number("3"), (Some(3), vec![]));
        assert_eq!(number("\"3\""), (Some(3), vec![]));
        assert_eq!(number(""), (None, vec![]));
        assert_eq!(
            number("-1"),
            (
                None,
                vec!["f.yaml:1:4: k: expected a whole number, found \"-1\"".to_string()]
            )
        );
    }

    #[test]
    fn a_required_value_must_be_there_and_single() {
        let text = |value| {
            read(value, |w| {
                w.text("k").map(|t| t.map(|t| t.value.into_owned()))
            })
        };
        assert_eq!(text("x").0, Some(Some("x".to_string())));
        assert_eq!(
            text("~").1,
            ["f.yaml:1:4: k: expected a value, found nothing"]
        );
        assert_eq!(
            text("[x]").1,
            ["f.yaml:1:4: k: expected a single value, not a list or mapping"]
        );
    }
}
