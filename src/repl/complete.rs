//! Reading the text before the cursor: what is being typed (a command, a global, a member of a
//! receiver chain, a string argument) and the chain it hangs on. Pure text work, no evaluation:
//! completing `client.instances.<TAB>` must never call the server.

/// One step of a receiver chain: `instances` in `client.instances`, `get` in `.get("web")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The identifier.
    pub name: String,
    /// True when it was called (`name(...)`), false for a property or a variable.
    pub called: bool,
}

/// What the word at the cursor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A `:` command's name.
    Command,
    /// The argument of a `:` command, such as `:remote ma`.
    CommandArg(String),
    /// A variable or global function.
    Global,
    /// A property or method of what the chain evaluates to.
    Member(Vec<Link>),
    /// Inside the string argument of a call: `chain.method("we` (`chain` is empty for a global
    /// function such as `Client("`).
    StringArg {
        /// The receiver's chain.
        chain: Vec<Link>,
        /// The method or function called.
        method: String,
    },
}

/// The word being completed: where it starts (a byte offset), its text so far, what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Byte offset of its start in the line.
    pub start: usize,
    /// What is typed of it so far.
    pub partial: String,
    /// What kind of word it is.
    pub slot: Slot,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads the word at `pos` (a byte offset into `line`).
pub fn word_at(line: &str, pos: usize) -> Word {
    let text = &line[..pos];
    if let Some(command) = text.trim_start().strip_prefix(':') {
        return match command.split_once(' ') {
            None => Word {
                start: pos - command.len(),
                partial: command.to_owned(),
                slot: Slot::Command,
            },
            Some((name, arg)) => {
                let arg = arg.trim_start();
                Word {
                    start: pos - arg.len(),
                    partial: arg.to_owned(),
                    slot: Slot::CommandArg(name.to_owned()),
                }
            }
        };
    }
    if let Some(quote) = open_string(text) {
        let partial = text[quote + 1..].to_owned();
        let before = text[..quote].trim_end();
        if let Some(call) = before.strip_suffix('(')
            && let Some(mut chain) = chain_before(call.trim_end())
            && let Some(method) = chain.pop()
        {
            return Word {
                start: quote + 1,
                partial,
                slot: Slot::StringArg {
                    chain,
                    method: method.name,
                },
            };
        }
        return Word {
            start: quote + 1,
            partial,
            slot: Slot::StringArg {
                chain: Vec::new(),
                method: String::new(),
            },
        };
    }
    let partial_len = text
        .chars()
        .rev()
        .take_while(|&c| is_ident(c))
        .map(char::len_utf8)
        .sum::<usize>();
    let start = pos - partial_len;
    let partial = text[start..].to_owned();
    let before = &text[..start];
    let slot = match before.strip_suffix('.') {
        Some(receiver) => chain_before(receiver).map_or(Slot::Member(Vec::new()), Slot::Member),
        None => Slot::Global,
    };
    Word {
        start,
        partial,
        slot,
    }
}

/// The byte offset of the quote that opens a string still open at the end of `text`, if any.
/// Knows `"…"` and `` `…` `` with backslash escapes in the former, and `//` comments.
pub fn open_string(text: &str) -> Option<usize> {
    let mut open: Option<(usize, char)> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match open {
            Some((_, q)) => {
                if c == '\\' && q == '"' {
                    chars.next();
                } else if c == q {
                    open = None;
                }
            }
            None => match c {
                '"' | '`' => open = Some((i, c)),
                '\'' => {
                    // A character literal: skip it whole.
                    if chars.next().is_some_and(|(_, c)| c == '\\') {
                        chars.next();
                    }
                    chars.next();
                }
                '/' if chars.peek().is_some_and(|&(_, n)| n == '/') => {
                    for (_, c) in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => {}
            },
        }
    }
    open.map(|(i, _)| i)
}

/// The byte offset of the `(` whose call is still open at the end of `text`, if any.
pub fn open_call(text: &str) -> Option<usize> {
    let mut depth_stack = Vec::new();
    let mut in_string: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = in_string {
            if c == '\\' && q == '"' {
                chars.next();
            } else if c == q {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '`' => in_string = Some(c),
            '(' | '[' | '{' => depth_stack.push((i, c)),
            ')' | ']' | '}' => {
                depth_stack.pop();
            }
            _ => {}
        }
    }
    depth_stack
        .into_iter()
        .rev()
        .find(|&(_, c)| c == '(')
        .map(|(i, _)| i)
}

/// The receiver chain that ends `text`: `client.instances.get("a")` → client, instances,
/// get(). `None` when it is not a plain chain (an index, a literal, an operator...).
pub fn chain_before(text: &str) -> Option<Vec<Link>> {
    let bytes = text.as_bytes();
    let mut end = text.len();
    let mut links = Vec::new();
    loop {
        let mut called = false;
        if end > 0 && bytes[end - 1] == b')' {
            end = matching_open(text, end - 1)?;
            called = true;
        }
        let name_start = text[..end]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_ident(c))
            .last()
            .map(|(i, _)| i)?;
        let name = &text[name_start..end];
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        links.push(Link {
            name: name.to_owned(),
            called,
        });
        if name_start > 0 && bytes[name_start - 1] == b'.' {
            end = name_start - 1;
        } else {
            break;
        }
    }
    links.reverse();
    Some(links)
}

/// How a name was bound earlier in the text being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `let NAME = CHAIN`: the chain's value.
    Value(Vec<Link>),
    /// `for NAME in CHAIN`: an element of the chain's array.
    Element(Vec<Link>),
}

/// The names bound in `text` by `let NAME = CHAIN` (or `const`) and `for NAME in CHAIN`, each
/// with the offset where its binding starts, in order: a later one shadows an earlier one.
/// Only bindings to a receiver chain count (`let n = 1 + 2` tells nothing).
pub fn local_bindings(text: &str) -> Vec<(String, usize, Binding)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let at_word = i == 0 || !is_ident(char::from(bytes[i - 1]));
        let keyword = ["let ", "const ", "for "]
            .into_iter()
            .find(|k| at_word && text[i..].starts_with(k));
        let Some(keyword) = keyword else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let rest = &text[i + keyword.len()..];
        let name_len = rest
            .trim_start()
            .chars()
            .take_while(|&c| is_ident(c))
            .map(char::len_utf8)
            .sum::<usize>();
        let skipped = rest.len() - rest.trim_start().len();
        let name = &rest[skipped..skipped + name_len];
        let after = rest[skipped + name_len..].trim_start();
        let (value, end) = if keyword == "for " {
            (after.strip_prefix("in "), '{')
        } else {
            (after.strip_prefix('='), ';')
        };
        if let (false, Some(value)) = (name.is_empty(), value) {
            let expr = value.split([end, '\n']).next().unwrap_or_default().trim();
            if let Some(chain) = chain_before(expr).filter(|c| !c.is_empty()) {
                let binding = if keyword == "for " {
                    Binding::Element(chain)
                } else {
                    Binding::Value(chain)
                };
                found.push((name.to_owned(), i, binding));
            }
        }
        i += keyword.len();
    }
    found
}

/// The offset of the `(` matching the `)` at `close`, skipping nested brackets and strings.
fn matching_open(text: &str, close: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string: Option<u8> = None;
    let bytes = text.as_bytes();
    let mut i = close + 1;
    while i > 0 {
        i -= 1;
        let b = bytes[i];
        if let Some(q) = in_string {
            if b == q && (i == 0 || bytes[i - 1] != b'\\') {
                in_string = None;
            }
            continue;
        }
        match b {
            b'"' | b'`' => in_string = Some(b),
            b')' | b']' | b'}' => depth += 1,
            b'(' | b'[' | b'{' => {
                depth -= 1;
                if depth == 0 {
                    return (b == b'(').then_some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, called: bool) -> Link {
        Link {
            name: name.to_owned(),
            called,
        }
    }

    #[test]
    fn members_of_a_chain() {
        let w = word_at("client.inst", 11);
        assert_eq!(w.partial, "inst");
        assert_eq!(w.start, 7);
        assert_eq!(w.slot, Slot::Member(vec![link("client", false)]));
        let line = r#"Client().instances.get("a(b)").sna"#;
        let w = word_at(line, line.len());
        assert_eq!(
            w.slot,
            Slot::Member(vec![
                link("Client", true),
                link("instances", false),
                link("get", true)
            ])
        );
        assert_eq!(w.partial, "sna");
        assert_eq!(word_at("x[0].na", 7).slot, Slot::Member(Vec::new()));
    }

    #[test]
    fn globals_and_commands() {
        let w = word_at("let a = pri", 11);
        assert_eq!(
            (w.start, w.partial.as_str(), w.slot),
            (8, "pri", Slot::Global)
        );
        let w = word_at(":he", 3);
        assert_eq!(
            (w.start, w.partial.as_str(), w.slot),
            (1, "he", Slot::Command)
        );
        let w = word_at(":remote ma", 10);
        assert_eq!(w.partial, "ma");
        assert_eq!(w.slot, Slot::CommandArg("remote".to_owned()));
    }

    #[test]
    fn string_arguments() {
        let line = r#"client.instances.get("we"#;
        let w = word_at(line, line.len());
        assert_eq!(w.partial, "we");
        assert_eq!(
            w.slot,
            Slot::StringArg {
                chain: vec![link("client", false), link("instances", false)],
                method: "get".to_owned()
            }
        );
        let w = word_at(r#"Client(""#, 8);
        assert_eq!(
            w.slot,
            Slot::StringArg {
                chain: vec![],
                method: "Client".to_owned()
            }
        );
        // A closed string is not an open one; escapes and comments are understood.
        assert_eq!(open_string(r#"print("a\"b") "#), None);
        assert_eq!(open_string("// \"\nx(\""), Some(7));
        assert_eq!(open_string("let c = 'a'; f(\""), Some(15));
    }

    #[test]
    fn open_calls() {
        assert_eq!(open_call("client.instances.create("), Some(23));
        assert_eq!(open_call("f(#{a: [1, 2]}, g(1), "), Some(1));
        assert_eq!(open_call("f(1)"), None);
        assert_eq!(open_call(r#"f(")""#), Some(1));
    }

    #[test]
    fn lets_and_loops_bind_names_to_chains() {
        let text = r#"let p = client.profiles.get("x"); let n = 1 + 2; for i in client.instances.all() { i."#;
        let found = local_bindings(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, "p");
        assert_eq!(
            found[0].2,
            Binding::Value(vec![
                link("client", false),
                link("profiles", false),
                link("get", true)
            ])
        );
        assert_eq!(found[1].0, "i");
        assert_eq!(
            found[1].2,
            Binding::Element(vec![
                link("client", false),
                link("instances", false),
                link("all", true)
            ])
        );
        assert!(local_bindings("letter.x; forest.y").is_empty());
    }
}
