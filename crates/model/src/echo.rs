//! How untrusted input is quoted back in error messages: bounded and on one line.

/// Longest user input echoed back in an error message, in characters.
pub const ECHO_MAX: usize = 160;

/// Longest input echoed back where a message quotes a peer's bytes (a token, a signed note, an
/// envelope or an evidence document), in characters: such messages often quote several.
pub const ECHO_SHORT_MAX: usize = 80;

/// `input` cut to [`ECHO_MAX`] characters, with control characters escaped, so an error message
/// stays one short line whatever a client sent.
pub fn echo(input: &str) -> String {
    echo_at_most(input, ECHO_MAX)
}

/// `input` cut to [`ECHO_SHORT_MAX`] characters, with control characters escaped: [`echo`] for
/// the spec parsers.
pub fn echo_short(input: &str) -> String {
    echo_at_most(input, ECHO_SHORT_MAX)
}

/// `input` cut to `max` characters (then `…`), with control characters escaped, so no terminal
/// escape and no forged extra line reaches a message.
fn echo_at_most(input: &str, max: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max));
    for (i, c) in input.chars().enumerate() {
        if i >= max {
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
    use super::{echo, echo_short};

    #[test]
    fn echo_is_one_bounded_line() {
        assert_eq!(echo("a\r\nb"), "a\\r\\nb");
        assert_eq!(echo("CRITICAL\u{1b}[0m"), "CRITICAL\\u{1b}[0m");
        assert_eq!(echo(&"x".repeat(500)).chars().count(), 161);
        assert_eq!(echo("plain"), "plain");
    }

    #[test]
    fn echo_short_is_shorter() {
        assert_eq!(echo_short("a\r\nb"), "a\\r\\nb");
        assert_eq!(echo_short(&"x".repeat(500)).chars().count(), 81);
        assert_eq!(echo_short(&"x".repeat(80)), "x".repeat(80));
        assert_eq!(echo_short("plain"), "plain");
    }
}
