//! What a concert's title may be: shown in pickers, pages and tickets, it
//! must show as what it is.

/// Characters that show nothing: zero-width spaces and joiners, word
/// joiners and invisible operators, the byte-order mark, a soft hyphen,
/// direction marks, embeddings, overrides and isolates. A title needs at
/// least one character besides them and white space (one of only these
/// showed as a blank choice in the booking page's concert picker).
fn shows_nothing(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{AD}'
                | '\u{61C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Bidirectional embeddings, overrides and isolates: they make the text
/// after them show in another order than it is stored ("Trojan Source"),
/// so a title holding one could show as another concert's. (Direction
/// marks, U+200E and U+200F, only nudge neutral characters and stay
/// allowed: mixed right-to-left titles need them.)
fn reorders(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `title` (already trimmed) may be a concert's: `1..=max`
/// characters, no control character, no reordering, and something that shows.
pub(super) fn acceptable(title: &str, max: usize) -> bool {
    let count = title.chars().count();
    (1..=max).contains(&count)
        && !title.chars().any(|c| c.is_control() || reorders(c))
        && title.chars().any(|c| !shows_nothing(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_needs_something_that_shows() {
        for blank in [
            "\u{200B}",
            "\u{FEFF}\u{2060}",
            "\u{200D} \u{AD}",
            "\u{3000}",
        ] {
            assert!(!acceptable(blank, 200), "{blank:?}");
        }
        for shown in [
            "Gala",
            "가을 음악회",
            "👨\u{200D}👩\u{200D}👧 Family Day",
            "x\u{200B}",
        ] {
            assert!(acceptable(shown, 200), "{shown:?}");
        }
    }

    #[test]
    fn reordering_characters_are_refused_and_direction_marks_are_not() {
        assert!(!acceptable("Gala \u{202E}thgiN", 200));
        assert!(!acceptable("a\u{2066}b\u{2069}", 200));
        assert!(acceptable("ليلة \u{200F}Gala", 200));
    }

    #[test]
    fn control_characters_and_length_are_held_to() {
        assert!(!acceptable("Gala\u{0}Night", 200));
        assert!(!acceptable("", 200));
        assert!(acceptable(&"x".repeat(200), 200));
        assert!(!acceptable(&"x".repeat(201), 200));
    }
}
