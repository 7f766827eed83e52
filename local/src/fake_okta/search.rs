//! `GET /api/v1/users?search=...`: the one search the dispatcher sends.
//!
//! The dispatcher looks a user up by `profile.login eq "<value>"` or
//! `profile.email eq "<value>"`, with `\` and `"` in the value escaped by a
//! backslash. That is all this parser accepts: any other attribute, operator,
//! `and`/`or`, or any other query parameter (`filter`, `q`, `limit`, `after`)
//! is answered as Okta answers a search it cannot parse, 400 `E0000031`
//! "Invalid search criteria." As in Okta, the operator and the value compare
//! case-insensitively, and DEPROVISIONED users are included.

use std::collections::HashMap;

use super::org::UserState;

/// The attributes the dispatcher searches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attribute {
    Login,
    Email,
}

/// `<attribute> eq "<value>"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Search {
    attribute: Attribute,
    /// Unescaped.
    pub(super) value: String,
}

impl Search {
    /// Reads the list endpoint's query: exactly one parameter, `search`.
    pub(super) fn from_query(query: &HashMap<String, String>) -> Option<Search> {
        match query.get("search") {
            Some(expression) if query.len() == 1 => parse(expression),
            _ => None,
        }
    }

    pub(super) fn matches(&self, user: &UserState) -> bool {
        let actual = match self.attribute {
            Attribute::Login => &user.login,
            Attribute::Email => &user.email,
        };
        actual.to_lowercase() == self.value.to_lowercase()
    }
}

/// Parses `profile.login eq "..."` or `profile.email eq "..."`.
fn parse(expression: &str) -> Option<Search> {
    let (attribute, rest) = expression.trim_start().split_once(char::is_whitespace)?;
    let attribute = match attribute {
        "profile.login" => Attribute::Login,
        "profile.email" => Attribute::Email,
        _ => return None,
    };
    let (operator, rest) = rest.trim_start().split_once(char::is_whitespace)?;
    if !operator.eq_ignore_ascii_case("eq") {
        return None;
    }
    let mut chars = rest.trim().chars();
    if chars.next() != Some('"') {
        return None;
    }
    let mut value = String::new();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => match chars.next()? {
                c @ ('"' | '\\') => value.push(c),
                _ => return None,
            },
            c => value.push(c),
        }
    }
    // Nothing may follow the closing quote (`rest` was trimmed).
    chars
        .next()
        .is_none()
        .then_some(Search { attribute, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dispatchers_expression_parses() {
        assert_eq!(
            parse(r#"profile.email eq "a\"b\\c@example.com""#),
            Some(Search {
                attribute: Attribute::Email,
                value: r#"a"b\c@example.com"#.into()
            })
        );
        assert_eq!(
            parse(r#"  profile.login  EQ  "x y" "#).map(|s| s.value),
            Some("x y".into())
        );
        for bad in [
            r#"profile.email eq "unterminated"#,
            r#"profile.email eq ana@example.com"#,
            r#"profile.email eq "bad\escape""#,
            r#"profile.email "x""#,
            r#"profile.email sw "x""#,
            r#"profile.email eq "x" extra"#,
            r#"profile.email eq "a" or profile.email eq "b""#,
            r#"status eq "ACTIVE""#,
            r#"Profile.Email eq "x""#,
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_query_must_be_a_search_and_nothing_else() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let search = r#"profile.login eq "a""#;
        assert!(Search::from_query(&query(&[("search", search)])).is_some());
        assert!(Search::from_query(&query(&[])).is_none());
        assert!(Search::from_query(&query(&[("filter", search)])).is_none());
        assert!(Search::from_query(&query(&[("search", search), ("limit", "3")])).is_none());
    }
}
