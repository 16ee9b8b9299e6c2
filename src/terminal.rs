//! What commands print on a terminal. Stored text printed on an auditor's
//! terminal: what the log holds is not the service's to vouch for, and an
//! edited row's type or id can carry escape sequences that move the cursor
//! and erase the lines above, the very violations that name it. And lines
//! that a reader who went, or a full disk, loses without a panic.

use std::borrow::Cow;

/// A line of a command's report on stdout. A reader that stopped reading
/// (`concert audit | head -1`) or a full disk loses the rest of the report,
/// not the command's work or its exit code: `println!` panics there, and
/// the command exited 101 after a backup written whole.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A line on stderr (progress, a command's failure), lost as `say!`'s
/// would be when nobody reads: `eprintln!` panics there too.
#[macro_export]
macro_rules! say_to_stderr {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
