//! What a concert's title may be: shown in pickers, pages and tickets, it
//! must show as what it is.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Characters that show nothing by themselves: white space, Unicode's
/// default-ignorable code points (zero-width spaces and joiners, the
/// Hangul fillers, variation selectors, tags, direction marks and the
/// like), interlinear annotation marks, the blank Braille pattern, and
/// combining marks, which show only on what they follow. A title needs at
/// least one character besides them (one of only such characters showed as
/// a blank choice in the booking page's concert picker).
fn shows_nothing(c: char) -> bool {
    c.is_whitespace()
        || default_ignorable(c)
        || matches!(c, '\u{FFF9}'..='\u{FFFB}' | '\u{2800}')
        || c.general_category_group() == GeneralCategoryGroup::Mark
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt,
/// Unicode 15.1): shown as nothing unless a font draws them on purpose.
fn default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Unicode's noncharacters, which no text is meant to hold: U+FDD0 to
/// U+FDEF, and the last two code points of every plane.
fn noncharacter(c: char) -> bool {
    matches!(c, '\u{FDD0}'..='\u{FDEF}') || u32::from(c) & 0xFFFE == 0xFFFE
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
/// characters, no control character or noncharacter, no reordering, and
/// something that shows.
pub(super) fn acceptable(title: &str, max: usize) -> bool {
    let count = title.chars().count();
    (1..=max).contains(&count)
        && !title
            .chars()
            .any(|c| c.is_control() || noncharacter(c) || reorders(c))
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
            // Hangul fillers, a combining grapheme joiner, Khmer vowels
            // inherent, a variation selector, tags, musical formatting.
            "\u{3164}\u{3164}\u{3164}",
            "\u{115F}\u{FFA0}",
            "\u{34F}\u{17B5}\u{FE0F}",
            "\u{E0001}\u{E0041}",
            "\u{1D173}",
            // The blank Braille pattern; a combining mark on nothing.
            "\u{2800}",
            "\u{301}",
        ] {
            assert!(!acceptable(blank, 200), "{blank:?}");
        }
        for shown in [
            "Gala",
            "가을 음악회",
            "👨\u{200D}👩\u{200D}👧 Family Day",
            "x\u{200B}",
            "Cafe\u{301}",
            "❤\u{FE0F} Live",
            "ᄀ\u{1161}",
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
        assert!(!acceptable("Gala\u{FFFE}", 200));
        assert!(!acceptable("Gala\u{10FFFF}", 200));
        assert!(!acceptable("Gala\u{FDD0}", 200));
        assert!(!acceptable("", 200));
        assert!(acceptable(&"x".repeat(200), 200));
        assert!(!acceptable(&"x".repeat(201), 200));
    }
}
