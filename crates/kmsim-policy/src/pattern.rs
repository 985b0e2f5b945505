//! Wildcard patterns (`*`, `?`), ARN patterns matched segment by segment, and policy variables
//! (`${aws:username}`, `${*}`, `${aws:PrincipalTag/team, 'none'}`).
//!
//! Matching is iterative with one backtrack point, so it takes at most
//! `pattern × text` steps and never recurses: no input can overflow the stack.

use crate::context::RequestContext;

/// One element of a resolved pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A character that must be there (a `*` or `?` that came from `${*}`/`${?}` is literal).
    Lit(char),
    /// `*`: any run of characters, empty included.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Reads a policy value into tokens. With `ctx` (policy version 2012-10-17) `${…}` variables are
/// replaced by the request's values; `None` is returned when a variable names a key the request
/// lacks and gives no default (AWS then treats the value as matching nothing).
pub(crate) fn resolve(raw: &str, ctx: Option<&RequestContext>) -> Option<Vec<Tok>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if let (Some(ctx), Some(body_and_tail)) = (ctx, rest.strip_prefix("${")) {
            if let Some(end) = body_and_tail.find('}') {
                let body = &body_and_tail[..end];
                match body {
                    "*" | "?" | "$" => out.extend(body.chars().map(Tok::Lit)),
                    _ => {
                        let value = variable(body, ctx)?;
                        out.extend(value.chars().map(Tok::Lit));
                    }
                }
                rest = &body_and_tail[end + 1..];
                continue;
            }
        }
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            other => Tok::Lit(other),
        });
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// The value of a `${key}` or `${key, 'default'}` variable.
fn variable(body: &str, ctx: &RequestContext) -> Option<String> {
    let (key, default) = match body.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let default = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .map(str::to_string);
            (key.trim(), default)
        }
        None => (body.trim(), None),
    };
    ctx.values(key)
        .and_then(|values| values.first())
        .map(|v| v.as_string())
        .or(default)
}

/// The condition keys the `${…}` variables of a policy value read (`${aws:username}`,
/// `${aws:PrincipalTag/team, 'none'}`), as written; `${*}`, `${?}` and `${$}` read none. The
/// value is scanned exactly as [`resolve`] scans it.
pub(crate) fn variable_keys(raw: &str) -> Vec<&str> {
    let mut keys = Vec::new();
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if let Some(body_and_tail) = rest.strip_prefix("${") {
            if let Some(end) = body_and_tail.find('}') {
                let body = &body_and_tail[..end];
                if !matches!(body, "*" | "?" | "$") {
                    keys.push(body.split_once(',').map_or(body, |(k, _)| k).trim());
                }
                rest = &body_and_tail[end + 1..];
                continue;
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    keys
}

/// The text a resolved pattern stands for when wildcards are not wildcards (StringEquals).
pub(crate) fn literal(tokens: &[Tok]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

/// Whether `text` matches the whole pattern; `fold` compares characters without case.
pub(crate) fn glob(tokens: &[Tok], text: &str, fold: bool) -> bool {
    let text: Vec<char> = text.chars().collect();
    glob_chars(tokens, &text, fold)
}

fn same(a: char, b: char, fold: bool) -> bool {
    a == b || (fold && a.to_lowercase().eq(b.to_lowercase()))
}

fn glob_chars(tokens: &[Tok], text: &[char], fold: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was and the text position it currently swallows up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Tok::Star) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if same(*c, text[t], fold) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, swallowed)) => {
                    p = star + 1;
                    t = swallowed + 1;
                    backtrack = Some((star, swallowed + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p.min(tokens.len())..]
        .iter()
        .all(|tok| *tok == Tok::Star)
}

/// Splits into at most six parts at the first five `:` (the shape of an ARN).
fn arn_parts<T: Copy>(items: &[T], is_colon: impl Fn(T) -> bool) -> Vec<&[T]> {
    let mut parts = Vec::with_capacity(6);
    let mut start = 0;
    for (i, item) in items.iter().enumerate() {
        if parts.len() == 5 {
            break;
        }
        if is_colon(*item) {
            parts.push(&items[start..i]);
            start = i + 1;
        }
    }
    parts.push(&items[start..]);
    parts
}

/// ARN matching as IAM does it: a pattern that starts `arn:` is compared segment by segment
/// with the six segments of the ARN (a wildcard never crosses a `:` before the resource part,
/// and a pattern with fewer segments matches nothing); any other pattern (`*`) is compared
/// with the whole text. Case-sensitive.
pub(crate) fn arn_like(tokens: &[Tok], arn: &str) -> bool {
    let starts_arn = tokens.len() >= 4
        && tokens[..4] == [Tok::Lit('a'), Tok::Lit('r'), Tok::Lit('n'), Tok::Lit(':')];
    if !starts_arn {
        return glob(tokens, arn, false);
    }
    let pattern = arn_parts(tokens, |t| t == Tok::Lit(':'));
    if pattern.len() < 6 {
        return false;
    }
    let text: Vec<char> = arn.chars().collect();
    let value = arn_parts(&text, |c| c == ':');
    value.len() == 6
        && pattern
            .iter()
            .zip(value.iter())
            .all(|(p, v)| glob_chars(p, v, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pat(s: &str) -> Vec<Tok> {
        resolve(s, None).expect("no variables without a context")
    }

    #[test]
    fn wildcards_match_runs_and_single_characters() {
        assert!(glob(&pat("kms:*"), "kms:Decrypt", false));
        assert!(glob(&pat("kms:ReEncrypt*"), "kms:ReEncryptFrom", false));
        assert!(glob(&pat("kms:De?rypt"), "kms:Decrypt", false));
        assert!(!glob(&pat("kms:De?rypt"), "kms:Dcrypt", false));
        assert!(glob(&pat("*"), "", false));
        assert!(!glob(&pat("?"), "", false));
        assert!(glob(&pat("a*b*c"), "aXXbYYbc", false));
        assert!(!glob(&pat("a*b*c"), "aXXbYYb", false));
        assert!(glob(&pat("KMS:decrypt"), "kms:Decrypt", true));
        assert!(!glob(&pat("KMS:decrypt"), "kms:Decrypt", false));
    }

    #[test]
    fn arn_wildcards_stay_inside_their_segment() {
        let key = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234";
        assert!(arn_like(&pat("arn:aws:kms:*:111122223333:key/mrk-*"), key));
        assert!(arn_like(&pat("arn:aws:kms:eu-*:*:key/*"), key));
        assert!(!arn_like(&pat("arn:aws:kms:*:key/mrk-1234"), key));
        assert!(arn_like(&pat("*"), key));
        assert!(!arn_like(
            &pat("arn:aws:kms:*:111122223333:key/mrk-*"),
            "arn:aws:kms:eu-west-1:111122223333:key/1234"
        ));
        // the resource part keeps its colons
        assert!(arn_like(&pat("arn:aws:s3:::a:*"), "arn:aws:s3:::a:b:c"));
    }

    #[test]
    fn variables_name_the_keys_they_read() {
        let keys =
            variable_keys("arn:${aws:username}/${*}/${ aws:PrincipalTag/team , 'x'}/${a${b}${open");
        assert_eq!(keys, ["aws:username", "aws:PrincipalTag/team", "a${b"]);
    }

    proptest! {
        /// Matching terminates and never panics, and a text always matches itself as a
        /// pattern when it has no wildcards.
        #[test]
        fn glob_total(p in "[a*?:\\\\é]{0,12}", t in "[ab:é]{0,12}") {
            let _ = glob(&pat(&p), &t, true);
            let _ = arn_like(&pat(&p), &t);
            prop_assert!(glob(&pat(&t), &t, false));
        }
    }
}
