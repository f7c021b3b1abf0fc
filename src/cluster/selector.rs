//! Label selectors (`a=b,c!=d,e in (f,g),!h,i`), read the way the API server reads them.
//!
//! The service answers `/v1/jobs?label_selector=` and `/v1/pods?label_selector=` from its watch
//! caches rather than from the API server, so it must parse and evaluate selectors itself, the way
//! the API server would: the grammar of apimachinery's `labels.Parse` (kubectl's `-l`), its key
//! and value rules, and its meaning (`in ()` is the set of the empty value; `!=` and `notin` also
//! select objects without the label). The `>` and `<` comparisons are refused: kube's
//! [`Selector`] cannot express them. Evaluate the result with [`kube::core::SelectorExt::matches`].

use std::collections::BTreeSet;
use std::{iter::Peekable, vec::IntoIter};

use kube::core::{Expression, Selector};

/// A selector the grammar does not accept: what is wrong, in words a user understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// Parses a label selector as the API server does ("a=b,c!=d,e in (f,g),!h,i").
pub fn parse(text: &str) -> Result<Selector, SelectorError> {
    let mut tokens = lex(text).into_iter().peekable();
    let mut expressions = Vec::new();
    while tokens.peek().is_some() {
        let expression = requirement(&mut tokens)?;
        let after = format!("after `{expression}`");
        match tokens.next().as_deref() {
            Some(",") if tokens.peek().is_none() => {
                return fail(format!("nothing follows `,` {after}"));
            }
            None | Some(",") => expressions.push(expression),
            other => return fail(format!("unexpected {} {after}; use `,`", shown(other))),
        }
    }
    Ok(expressions.into_iter().collect())
}

/// Tokens are symbols or words; a word never holds a symbol's character, nor a blank.
type Tokens = Peekable<IntoIter<String>>;
const SYMBOLS: [&str; 9] = ["!=", "==", "=", "!", "(", ")", ",", "<", ">"];
const SYMBOL_CHARS: [char; 7] = ['=', '!', '(', ')', ',', '<', '>'];
const BLANKS: [char; 4] = [' ', '\t', '\r', '\n'];

/// apimachinery's lexer: blanks separate, the longest symbol wins (`!=` over `!`), and anything
/// else up to a symbol or a blank is a word (`in` and `notin` too: the parser tells them apart).
fn lex(text: &str) -> Vec<String> {
    let in_word = |c: char| !BLANKS.contains(&c) && !SYMBOL_CHARS.contains(&c);
    let mut tokens = Vec::new();
    let mut rest = text.trim_start_matches(BLANKS);
    while !rest.is_empty() {
        let symbol = SYMBOLS.iter().find_map(|s| rest.strip_prefix(s));
        let after = symbol.unwrap_or_else(|| rest.trim_start_matches(in_word));
        tokens.push(rest.strip_suffix(after).unwrap_or(rest).to_string());
        rest = after.trim_start_matches(BLANKS);
    }
    tokens
}

fn shown(token: Option<&str>) -> String {
    token.map_or("the end".into(), |token| format!("`{token}`"))
}

fn word(tokens: &mut Tokens) -> Option<String> {
    tokens.next_if(|token| !token.starts_with(SYMBOL_CHARS))
}

fn at_end_of_requirement(tokens: &mut Tokens) -> bool {
    matches!(tokens.peek().map(String::as_str), None | Some(","))
}

fn fail<T>(message: String) -> Result<T, SelectorError> {
    Err(SelectorError(message))
}

fn requirement(tokens: &mut Tokens) -> Result<Expression, SelectorError> {
    let negated = tokens.next_if(|token| token == "!").is_some();
    let Some(key) = word(tokens) else {
        let found = shown(tokens.next().as_deref());
        let wanted = if negated { "after `!`" } else { "or `!`" };
        return fail(format!("expected a label key {wanted}, found {found}"));
    };
    let key = label_key(key)?;
    if negated {
        return Ok(Expression::DoesNotExist(key));
    } else if at_end_of_requirement(tokens) {
        return Ok(Expression::Exists(key));
    }
    match tokens.next().as_deref() {
        Some(op @ ("=" | "==" | "!=")) => {
            let value = match word(tokens) {
                Some(value) => value,
                None if at_end_of_requirement(tokens) => String::new(),
                None => {
                    let found = shown(tokens.next().as_deref());
                    return fail(format!("`{key}{op}` needs a value, found {found}"));
                }
            };
            let value = label_value(&key, value)?;
            Ok(match op {
                "!=" => Expression::NotEqual(key, value),
                _ => Expression::Equal(key, value),
            })
        }
        Some(op @ ("in" | "notin")) => {
            let values = value_list(tokens, &key, op)?;
            Ok(match op {
                "in" => Expression::In(key, values),
                _ => Expression::NotIn(key, values),
            })
        }
        Some(op @ ("<" | ">")) => fail(format!("`{key} {op}`: `{op}` is not supported")),
        other => {
            let found = shown(other);
            fail(format!("`{key}` needs =, !=, in or notin, not {found}"))
        }
    }
}

/// `(v1,v2)`, where a missing value is the empty one, as in apimachinery: `()` is `{""}`.
fn value_list(tokens: &mut Tokens, key: &str, op: &str) -> Result<BTreeSet<String>, SelectorError> {
    let list = format!("`{key} {op} (...)`");
    if tokens.next_if(|token| token == "(").is_none() {
        let found = shown(tokens.next().as_deref());
        return fail(format!("`{op}` needs a list as in {list}, found {found}"));
    }
    let mut values = BTreeSet::new();
    loop {
        values.insert(label_value(key, word(tokens).unwrap_or_default())?);
        match tokens.next().as_deref() {
            Some(",") => {}
            Some(")") => return Ok(values),
            other => return fail(format!("{list} needs `,` or `)`, not {}", shown(other))),
        }
    }
}

/// A qualified name: an optional DNS-subdomain prefix and `/`, then a name of 1 to 63 characters.
fn label_key(key: String) -> Result<String, SelectorError> {
    let (prefix, name) = key.split_once('/').unzip();
    let name = name.unwrap_or(&key);
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let dns_label = |part: &str| {
        let inner = part.chars().all(|c| lower(c) || c == '-');
        part.starts_with(lower) && part.ends_with(lower) && inner
    };
    let bad_prefix = prefix.is_some_and(|p| p.len() > 253 || !p.split('.').all(dns_label));
    let problem = match prefix {
        _ if name.contains('/') => Some("a key holds at most one `/`".into()),
        _ if bad_prefix => Some("its prefix must be a DNS subdomain, up to 253 characters".into()),
        Some(_) if name.is_empty() => Some("the name after `/` is empty".into()),
        Some(_) => name_problem("the name after `/`", name),
        None => name_problem("a key", name),
    };
    match problem {
        Some(problem) => fail(format!("invalid label key `{key}`: {problem}")),
        None => Ok(key),
    }
}

fn label_value(key: &str, value: String) -> Result<String, SelectorError> {
    match name_problem("a value", &value) {
        Some(problem) => fail(format!("invalid value `{value}` for `{key}`: {problem}")),
        None => Ok(value),
    }
}

/// What a key's name and a value must be, the empty value excepted.
const NAME_RULE: &str = "must be alphanumeric at both ends, with `-`, `_`, `.` between";

/// What is wrong with a key's name or with a value (which may be empty), if anything.
fn name_problem(subject: &str, name: &str) -> Option<String> {
    let edge = |c: char| c.is_ascii_alphanumeric();
    let inner = |c: char| edge(c) || matches!(c, '-' | '_' | '.');
    let well_formed = name.is_empty()
        || (name.starts_with(edge) && name.ends_with(edge) && name.chars().all(inner));
    if name.len() > 63 {
        Some(format!("{subject} may be at most 63 characters long"))
    } else if !well_formed {
        Some(format!("{subject} {NAME_RULE}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use kube::core::SelectorExt;

    use super::*;

    /// Checks each selector selects an object with these labels (`k=v,k2=v2`), or not.
    fn check_selection(cases: &[(&str, &str, bool)]) {
        for (selector, labels, want) in cases {
            let pairs = labels.split(',').filter_map(|pair| pair.split_once('='));
            let labels = pairs.map(|(k, v)| (k.into(), v.into())).collect();
            let selects = parse(selector).expect(selector).matches(&labels);
            assert_eq!(selects, *want, "{selector} on {labels:?}");
        }
    }

    fn refusal(selector: &str) -> String {
        parse(selector).expect_err(selector).0
    }

    #[test]
    fn equality_and_set_requirements_select_like_the_api_server() {
        let all = "a=b,c!=d,e in (f,g),!h,i";
        check_selection(&[
            (all, "a=b,e=g,i=", true),
            (all, "a=b,c=x,e=f,i=1,z=z", true),
            (all, "a=b,c=d,e=f,i=1", false),
            (all, "a=b,e=x,i=1", false),
            (all, "a=b,e=f,h=,i=1", false),
            (all, "a=b,e=f", false),
            (all, "a=B,e=f,i=1", false),
            ("a==b", "a=b", true),
            ("a notin (x, y)", "", true),
            ("a notin (x, y)", "a=y", false),
            ("example.com/team=ml", "example.com/team=ml", true),
            // `in` and `notin` are plain words where no operator can stand.
            ("in in (notin)", "in=notin", true),
            ("notin=in", "notin=in", true),
        ]);
    }

    #[test]
    fn missing_values_mean_the_empty_value_as_in_apimachinery() {
        check_selection(&[
            ("a=", "a=", true),
            ("a=", "a=x", false),
            ("a!=,b", "a=x,b=", true),
            ("a in ()", "a=", true),
            ("a in ()", "", false),
            ("a in (x,)", "a=", true),
            ("a notin (,x)", "a=y", true),
        ]);
    }

    #[test]
    fn empty_and_blank_selectors_select_everything() {
        for text in ["", "   ", "\t\r\n"] {
            assert!(parse(text).expect(text).selects_all(), "{text:?}");
        }
    }

    #[test]
    fn blanks_around_tokens_do_not_change_the_meaning() {
        let tight = parse("a=b,c!=d,e in (f,g),!h,i").expect("tight");
        let spaced = parse(" a = b ,\tc != d , e in( f , g ) , ! h , i ").expect("spaced");
        assert_eq!(spaced, tight);
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_reason() {
        let cases = "
            a===b      => `a==` needs a value, found `=`
            a=b)       => unexpected `)` after `a=b`; use `,`
            !a=b       => unexpected `=` after `!a`; use `,`
            a,         => nothing follows `,` after `a`
            a b        => `a` needs =, !=, in or notin, not `b`
            a in b     => `in` needs a list as in `a in (...)`, found `b`
            a notin    => `notin` needs a list as in `a notin (...)`, found the end
            a in (b    => `a in (...)` needs `,` or `)`, not the end
            a in (b c) => `a in (...)` needs `,` or `)`, not `c`
            ,a         => expected a label key or `!`, found `,`
            !!a        => expected a label key after `!`, found `!`
            a>1        => `a >`: `>` is not supported
            -x         => invalid label key `-x`: a key {NAME_RULE}
            é          => invalid label key `é`: a key {NAME_RULE}
            a.io/b-    => invalid label key `a.io/b-`: the name after `/` {NAME_RULE}
            a=-v       => invalid value `-v` for `a`: a value {NAME_RULE}
            a/b/c      => invalid label key `a/b/c`: a key holds at most one `/`
            /a         => invalid label key `/a`: its prefix {DNS}
            A.io/a     => invalid label key `A.io/a`: its prefix {DNS}
            a.io/      => invalid label key `a.io/`: the name after `/` is empty";
        for (text, message) in cases.lines().filter_map(|line| line.split_once(" => ")) {
            let dns = "must be a DNS subdomain, up to 253 characters";
            let message = message.replace("{NAME_RULE}", NAME_RULE);
            let message = message.replace("{DNS}", dns);
            assert_eq!(refusal(text.trim()), message, "{text}");
        }
    }

    #[test]
    fn keys_and_values_are_at_most_as_long_as_kubernetes_allows() {
        let (x63, x64) = ("x".repeat(63), "x".repeat(64));
        assert!(parse(&format!("{}/{x63} in ({x63})", "a".repeat(253))).is_ok());
        assert!(refusal(&format!("{}/a", "a".repeat(254))).contains("must be a DNS subdomain"));
        assert!(refusal(&x64).ends_with("a key may be at most 63 characters long"));
        let long_value = refusal(&format!("a in (b,{x64})"));
        assert!(long_value.ends_with("a value may be at most 63 characters long"));
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let pieces = ["a", "=", "!", "(", ")", ",", " ", "in", "<", "é", "/"];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            texts = Vec::from_iter(texts.iter().flat_map(|t| pieces.map(|p| t.clone() + p)));
            texts.iter().for_each(|text| drop(parse(text)));
        }
    }
}
