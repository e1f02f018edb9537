//! Places in a text counted the way libyaml counts them, for the errors libyaml gives
//! without one (a character it refuses) and to keep every place within the file.
//!
//! libyaml breaks lines at `\r\n`, `\r`, `\n`, NEL (U+0085), LS (U+2028) and PS
//! (U+2029), and counts columns in characters; the places computed here agree with the
//! ones it reports, so that all the errors of a file are counted alike.

use super::Location;

/// Whether libyaml reads `c` at all: YAML's printable set, tab and line breaks included.
/// Anything else is "control characters are not allowed", wherever it stands.
pub fn readable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The first character libyaml refuses, with its place.
pub fn first_unreadable(text: &str) -> Option<(char, Location)> {
    let (at, c) = text.char_indices().find(|&(_, c)| !readable(c))?;
    Some((c, of_byte(text, at)))
}

/// The place of byte `at` (a character boundary) of `text`.
pub fn of_byte(text: &str, at: usize) -> Location {
    let mut place = Location { line: 1, column: 1 };
    let mut chars = text[..at].chars().peekable();
    while let Some(c) = chars.next() {
        let crlf = c == '\r' && chars.peek() == Some(&'\n');
        if crlf {
            chars.next();
        }
        if crlf || matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            place.line += 1;
            place.column = 1;
        } else {
            place.column += 1;
        }
    }
    place
}

/// `at`, moved back onto the last character of the file if it points past it (libyaml
/// reports the end of a file that ends with a line break on the line after it); an
/// empty file's one place is 1:1.
pub fn within(text: &str, at: Location) -> Location {
    let end = of_byte(text, text.len());
    let last = match text.char_indices().next_back() {
        Some((i, _)) => of_byte(text, i),
        None => return Location { line: 1, column: 1 },
    };
    let at = Location {
        line: at.line.max(1),
        column: at.column.max(1),
    };
    if at > end || (at == end && end.column == 1) {
        last
    } else {
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(line: u64, column: u64) -> Location {
        Location { line, column }
    }

    #[test]
    fn lines_break_where_libyaml_breaks_them() {
        let text = "a\r\nb\rc\u{85}d\u{2028}e\u{2029}f\ng";
        let at = |s: &str| of_byte(text, text.find(s).unwrap());
        assert_eq!(at("b"), loc(2, 1));
        assert_eq!(at("c"), loc(3, 1));
        assert_eq!(at("d"), loc(4, 1));
        assert_eq!(at("e"), loc(5, 1));
        assert_eq!(at("f"), loc(6, 1));
        assert_eq!(at("g"), loc(7, 1));
        assert_eq!(
            of_byte("é x", "é ".len()),
            loc(1, 3),
            "columns are characters"
        );
    }

    #[test]
    fn the_first_refused_character_is_found_with_its_place() {
        assert_eq!(
            first_unreadable("a: b\nc: \u{1}\n"),
            Some(('\u{1}', loc(2, 4)))
        );
        assert_eq!(
            first_unreadable("a: \u{feff}\u{7f}"),
            Some(('\u{7f}', loc(1, 5)))
        );
        assert_eq!(first_unreadable("a:\tb\u{85}c\r\n"), None);
    }

    #[test]
    fn a_place_never_points_past_the_end() {
        // The line break that ends the last line is the last place of the file.
        assert_eq!(within("a: [\n", loc(2, 1)), loc(1, 5));
        assert_eq!(
            within("a: [", loc(1, 5)),
            loc(1, 5),
            "just after the last character"
        );
        assert_eq!(within("a: [\n", loc(9, 9)), loc(1, 5));
        assert_eq!(within("", loc(1, 1)), loc(1, 1));
        assert_eq!(within("a\nb\n", loc(2, 1)), loc(2, 1));
        assert_eq!(within("a\nb\n", loc(0, 0)), loc(1, 1));
    }
}
