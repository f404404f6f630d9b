//! How untrusted input is quoted back in messages: bounded and on one line.

/// Longest input echoed back in a message, in characters.
const ECHO_MAX: usize = 80;

/// `input` cut to [`ECHO_MAX`] characters, with control characters escaped, so a message stays
/// one short line whatever a document said (no terminal escapes, no forged extra lines).
pub(crate) fn echo(input: &str) -> String {
    let mut out = String::with_capacity(input.len().min(ECHO_MAX));
    for (i, c) in input.chars().enumerate() {
        if i >= ECHO_MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::echo;

    #[test]
    fn echo_is_one_bounded_line() {
        assert_eq!(echo("a\r\nb"), "a\\r\\nb");
        assert_eq!(echo("CRITICAL\u{1b}[0m"), "CRITICAL\\u{1b}[0m");
        assert_eq!(echo(&"x".repeat(500)).chars().count(), 81);
        assert_eq!(echo("plain"), "plain");
    }
}
