//! A panic inside libyaml-safer turned into an error of the file being read.
//!
//! libyaml-safer 0.3 still has `panic!`s on paths its authors had not worked out
//! (`scanner.rs`: "TODO: What is expected here?", reached by a tag directly followed by
//! a `,` in a flow collection, `{ a: !b, c: d }`). Whatever a file holds must not take
//! down `check` or a running reload, so every call into the parser goes through
//! [`catch`]: the panic is caught, reported as a syntax error of that file with a place,
//! and the parser, in an unknown state since, is not called again.
//!
//! The default panic hook would still print the panic and a backtrace to stderr for a
//! panic that is caught and reported; while the parser runs, the hook installed here
//! says nothing (on this thread only) and every other panic goes to the hook that was
//! there before.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use libyaml_safer::{EventData, Parser};

use super::Location;
use crate::config::error::panic_message;

thread_local! {
    /// Set while this thread runs the parser: a panic then is reported as an error.
    static PARSING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a call into libyaml-safer); its panic, if any, as the panic's message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !PARSING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = PARSING.with(|p| p.replace(true));
    // The parser is dropped, never used again, after a panic: nothing sees a broken
    // invariant.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    PARSING.with(|p| p.set(was));
    result.map_err(|payload| panic_message(&*payload))
}

/// Where the parser gave up: the last character of the shortest start of `text` that
/// makes it panic too (libyaml keeps its place private, and its scanner reads ahead of
/// the tokens it hands out, so the last token read says little). The parser reads a
/// text front to back and looks only a few characters ahead, so a start of the text
/// that panics grows into longer ones that do: a bisection over the length finds it in
/// about log2(length) parses, paid only by a file that made it panic.
pub fn place_of_panic(text: &str) -> Location {
    let panics = |len: usize| {
        let mut parser = Parser::new();
        parser.set_input(&text.as_bytes()[..len]);
        catch(|| {
            while let Ok(event) = parser.parse() {
                if event.data == EventData::StreamEnd {
                    break;
                }
            }
        })
        .is_err()
    };
    // Invariant: the first `short` bytes do not panic, the first `long` do.
    let (mut short, mut long) = (0, text.len());
    loop {
        let mut mid = short + (long - short) / 2;
        while !text.is_char_boundary(mid) {
            mid += 1;
        }
        if mid >= long {
            break;
        }
        if mid == short {
            break;
        }
        if panics(mid) {
            long = mid;
        } else {
            short = mid;
        }
    }
    let last = text[..long]
        .char_indices()
        .next_back()
        .map_or(0, |(i, _)| i);
    super::place::within(text, super::place::of_byte(text, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_its_message_and_the_hook_stays_quiet() {
        assert_eq!(catch(|| 1), Ok(1));
        let caught = catch(|| -> u32 { panic!("TODO: What is expected here?") });
        assert_eq!(caught, Err("TODO: What is expected here?".to_string()));
        let formatted = catch(|| -> u32 { panic!("at {}", 3) });
        assert_eq!(formatted, Err("at 3".to_string()));
        assert!(!PARSING.with(Cell::get), "reset after the panic");
    }

    #[test]
    fn the_place_of_a_panic_is_the_token_the_scanner_cannot_read() {
        assert_eq!(
            place_of_panic("regions: { a: !b, c: d }\n"),
            Location {
                line: 1,
                column: 17
            }
        );
    }
}
