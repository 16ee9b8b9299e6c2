//! Stored text printed on an auditor's terminal. What the log holds is not
//! the service's to vouch for: an edited row's type or id can carry escape
//! sequences that move the cursor and erase the lines above, the very
//! violations that name it.

use std::borrow::Cow;

/// `text` with each control character written as its escape (`\u{1b}`):
/// it prints what is stored, and moves nothing.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_line_breaks_print_as_escapes() {
        assert_eq!(
            printable("Charged\u{1b}[2K\r\u{1b}[1A\n"),
            "Charged\\u{1b}[2K\\u{d}\\u{1b}[1A\\u{a}"
        );
    }

    #[test]
    fn text_without_control_characters_is_left_as_it_is() {
        assert!(matches!(
            printable("#3 Wallet/2f0c seq 1 Charged ₩"),
            Cow::Borrowed(_)
        ));
    }
}
