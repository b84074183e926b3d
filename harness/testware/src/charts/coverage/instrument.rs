//! A template file with a marker in every branch: each branch of `if`, `with`
//! and `range` (and the branch the template does not write — the condition
//! false, the list empty — by an added `else`), and each `define` body, starts
//! with an action printing ` #twcov:<id>`, a YAML comment wherever a branch
//! usually begins. The markers keep the template's whitespace trimming: a
//! branch's own `-}}` moves onto the marker's action, an `end`'s `{{-` onto the
//! added `else`. Go's template lexer is followed for what it needs here —
//! actions, comments, trim markers, string, raw string and character literals.
//!
//! A helper's output is a value (compared, hashed, tested by `with`), so its
//! markers must not stay in it: every `include NAME DATA` becomes
//! `include "twcov.clean" (list NAME DATA)`, the same output without markers,
//! and an action before it prints the markers that include wrote
//! (`twcov.markers`, which runs the helper once more). Both are in
//! [`HELPERS`], added to the copy as [`HELPERS_FILE`].

use std::fmt;

/// Text every marker starts with (then the branch id and [`MARKER_END`]).
pub const MARKER: &str = " #twcov:";

/// Text every marker ends with, so that digits the branch writes right after
/// it are not read as its id.
pub const MARKER_END: char = ';';

/// The file of the helpers the rewritten includes call.
pub const HELPERS_FILE: &str = "templates/_twcov.tpl";

/// `twcov.clean`: an include without markers; `twcov.markers`: the markers
/// an include writes, space-separated after a space (nothing without any).
pub const HELPERS: &str = r##"{{- define "twcov.clean" -}}
{{- regexReplaceAll " ?#twcov:[0-9]+;" (include (index . 0) (index . 1)) "" -}}
{{- end -}}
{{- define "twcov.markers" -}}
{{- $found := regexFindAll "#twcov:[0-9]+;" (include (index . 0) (index . 1)) -1 -}}
{{- if $found }} {{ join " " $found }}{{ end -}}
{{- end -}}
"##;

/// What a branch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchKind {
    /// `if COND` true.
    Then(String),
    /// `else if COND` true (the ones before false).
    ElseIf(String),
    /// The written `else` of an `if`, `with` or `range`.
    Else,
    /// No condition of the `if` held, no `else` written (`if COND` names it).
    NoneTrue(String),
    /// `with PIPELINE` non-empty.
    With(String),
    /// `with PIPELINE` empty, no `else` written.
    WithEmpty(String),
    /// `range PIPELINE` with at least one item.
    Range(String),
    /// `range PIPELINE` over nothing, no `else` written.
    RangeEmpty(String),
    /// The body of `define NAME` (or `block NAME`): included at least once.
    Define(String),
}

impl fmt::Display for BranchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Then(c) => write!(f, "`if {c}` never true"),
            Self::ElseIf(c) => write!(f, "`else if {c}` never taken"),
            Self::Else => write!(f, "`else` never taken"),
            Self::NoneTrue(c) => write!(f, "`if {c}` never false (no `else` written)"),
            Self::With(c) => write!(f, "`with {c}` never set"),
            Self::WithEmpty(c) => write!(f, "`with {c}` never empty (no `else` written)"),
            Self::Range(c) => write!(f, "`range {c}` never over a non-empty list"),
            Self::RangeEmpty(c) => write!(f, "`range {c}` never over an empty list"),
            Self::Define(n) => write!(f, "`define {n}` never included"),
        }
    }
}

/// One branch of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Its marker's id, unique in the chart.
    pub id: usize,
    /// What it is.
    pub kind: BranchKind,
    /// 1-based line of the action that opens it (of the `end`, for the branches
    /// the template does not write).
    pub line: usize,
    /// Byte range of its body in the original text (empty for the branches
    /// the template does not write).
    pub body: std::ops::Range<usize>,
}

/// A file's text that Go's template lexer would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LexError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One `{{ … }}` action.
#[derive(Debug, Clone)]
struct Action {
    start: usize,
    end: usize,
    /// The inside's byte range, without delimiters and trim markers.
    inner: std::ops::Range<usize>,
    left_trim: bool,
    right_trim: bool,
    /// The inside, without delimiters, trim markers and surrounding space;
    /// `None` for a comment.
    words: Option<String>,
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The actions of `text`, in order.
fn actions(text: &str) -> Result<Vec<Action>, LexError> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(offset) = text[pos..].find("{{") {
        let start = pos + offset;
        let mut i = start + 2;
        let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let left_trim =
            bytes.get(i) == Some(&b'-') && bytes.get(i + 1).is_some_and(|b| is_space(*b));
        if left_trim {
            i += 1;
        }
        let error = |message: &str| LexError {
            line: line_of(text, start),
            message: message.into(),
        };
        let inner_start = i;
        while bytes.get(i).is_some_and(|b| is_space(*b)) {
            i += 1;
        }
        let comment = text[i..].starts_with("/*");
        let inner_end = if comment {
            let close = text[i + 2..]
                .find("*/")
                .ok_or_else(|| error("unclosed comment"))?;
            i += 2 + close + 2;
            while bytes.get(i).is_some_and(|b| is_space(*b) || *b == b'-') {
                i += 1;
            }
            if !text[i..].starts_with("}}") {
                return Err(error("comment ends before the closing delimiter"));
            }
            i
        } else {
            loop {
                match bytes.get(i) {
                    None => return Err(error("unclosed action")),
                    Some(q @ (b'"' | b'`' | b'\'')) => {
                        let end = skip_literal(text, i);
                        // Only a raw string may span lines.
                        if end == text.len() || (*q != b'`' && text[i..end].contains('\n')) {
                            return Err(error(match q {
                                b'"' => "unterminated quoted string",
                                b'`' => "unterminated raw quoted string",
                                _ => "unterminated character constant",
                            }));
                        }
                        i = end;
                    }
                    Some(b'}') if bytes.get(i + 1) == Some(&b'}') => break,
                    Some(_) => i += 1,
                }
            }
            i
        };
        let before_close = &text[inner_start..inner_end];
        let right_trim = before_close.ends_with('-')
            && before_close[..before_close.len() - 1]
                .chars()
                .last()
                .is_some_and(char::is_whitespace);
        let inside = if right_trim {
            &before_close[..before_close.len() - 1]
        } else {
            before_close
        };
        found.push(Action {
            start,
            end: inner_end + 2,
            inner: inner_start..inner_start + inside.len(),
            left_trim,
            right_trim,
            words: (!comment).then(|| inside.trim().to_owned()),
        });
        pos = inner_end + 2;
    }
    Ok(found)
}

/// The keyword an action starts with and the rest.
fn keyword(words: &str) -> (&str, &str) {
    let words = words.trim();
    match words.split_once(char::is_whitespace) {
        Some((k, rest)) => (k, rest.trim()),
        None => (words, ""),
    }
}

#[derive(Debug)]
enum Block {
    /// `if`/`with`/`range`: what an added `else` marks, whether an `else` is written.
    Branching { missing: BranchKind, has_else: bool },
    /// `define`, `block` (the body's end closes the current branch only).
    Define,
}

/// `text` with a marker at the start of every branch, and the branches, their
/// ids counted from `next_id`.
///
/// # Errors
/// An action Go's lexer would refuse (unclosed, an unterminated string) or
/// an `end`/`else` without its block.
pub fn instrument(text: &str, next_id: &mut usize) -> Result<(String, Vec<Branch>), LexError> {
    let actions = actions(text)?;
    // Replacements of byte ranges of `text` (empty ranges: insertions).
    let mut inserts: Vec<(usize, usize, String)> = Vec::new();
    let mut branches = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    // The branch whose body is open (index into `branches`).
    let mut open: Vec<usize> = Vec::new();
    let marker = |id: usize, right_trim: bool| {
        format!(
            "{{{{\"{MARKER}{id}{MARKER_END}\"{}}}}}",
            if right_trim { " -" } else { "" }
        )
    };
    for action in &actions {
        let Some(words) = &action.words else { continue };
        let (key, rest) = keyword(words);
        let (inside, calls) = rewrite_includes(&text[action.inner.clone()]);
        if !calls.is_empty() {
            inserts.push((action.inner.start, action.inner.end, inside));
            let control = matches!(key, "if" | "with" | "range" | "else" | "define" | "block");
            // An action that writes a value prints its includes' markers at
            // the end of its line, a comment even in a flow mapping
            // (`{name: {{ include … }}}`); one that opens a branch, before it
            // (after, they would print only when the branch runs).
            let line_end = text[action.end..]
                .find('\n')
                .map_or(text.len(), |n| action.end + n);
            let after = !control && !text[action.end..line_end].contains("{{");
            // Not before an `else if`: that would run in the branch before it.
            if after || key != "else" {
                let prefix: String = calls
                    .iter()
                    .enumerate()
                    .map(|(i, call)| {
                        let trim = if i == 0 && action.left_trim && !after {
                            "- "
                        } else {
                            ""
                        };
                        format!("{{{{{trim}include \"twcov.markers\" {call}}}}}")
                    })
                    .collect();
                let at = if after { line_end } else { action.start };
                inserts.push((at, at, prefix));
            }
        }
        let error = |message: String| LexError {
            line: line_of(text, action.start),
            message,
        };
        // A branch starts after this action: (kind, the block it opens, if any).
        let starts: Option<(BranchKind, Option<Block>)> = match key {
            "if" => Some((
                BranchKind::Then(rest.into()),
                Some(Block::Branching {
                    missing: BranchKind::NoneTrue(rest.into()),
                    has_else: false,
                }),
            )),
            "with" => Some((
                BranchKind::With(rest.into()),
                Some(Block::Branching {
                    missing: BranchKind::WithEmpty(rest.into()),
                    has_else: false,
                }),
            )),
            "range" => Some((
                BranchKind::Range(rest.into()),
                Some(Block::Branching {
                    missing: BranchKind::RangeEmpty(rest.into()),
                    has_else: false,
                }),
            )),
            "define" | "block" => Some((
                BranchKind::Define(rest.split_whitespace().next().unwrap_or("").into()),
                Some(Block::Define),
            )),
            "else" => {
                let (next, cond) = keyword(rest);
                let kind = match next {
                    "if" => BranchKind::ElseIf(cond.into()),
                    "with" => BranchKind::With(cond.into()),
                    _ => BranchKind::Else,
                };
                match blocks.last_mut() {
                    Some(Block::Branching { has_else, .. }) => {
                        if kind == BranchKind::Else {
                            *has_else = true;
                        }
                    }
                    _ => return Err(error("`else` outside if, with or range".into())),
                }
                if let Some(b) = open.pop() {
                    branches[b] = close(&branches[b], action.start);
                }
                Some((kind, None))
            }
            "end" => {
                let block = blocks
                    .pop()
                    .ok_or_else(|| error("`end` without a block".into()))?;
                if let Some(b) = open.pop() {
                    branches[b] = close(&branches[b], action.start);
                }
                if let Block::Branching {
                    missing,
                    has_else: false,
                } = block
                {
                    // The branch the template does not write gets an `else`,
                    // taking over the `end`'s left trim.
                    let id = *next_id;
                    *next_id += 1;
                    inserts.push((
                        action.start,
                        action.start,
                        format!(
                            "{{{{{}else}}}}{}",
                            if action.left_trim { "- " } else { "" },
                            marker(id, false)
                        ),
                    ));
                    // (The end, after the marker, keeps a trim with nothing to trim.)
                    branches.push(Branch {
                        id,
                        kind: missing,
                        line: line_of(text, action.start),
                        body: action.start..action.start,
                    });
                }
                None
            }
            _ => None,
        };
        if let Some((kind, block)) = starts {
            let id = *next_id;
            *next_id += 1;
            // The action's own `-}}` now has the marker after it, which takes
            // over the trim.
            inserts.push((action.end, action.end, marker(id, action.right_trim)));
            branches.push(Branch {
                id,
                kind,
                line: line_of(text, action.start),
                body: action.end..text.len(),
            });
            if let Some(block) = block {
                blocks.push(block);
            }
            open.push(branches.len() - 1);
        }
    }
    if !blocks.is_empty() {
        return Err(LexError {
            line: line_of(text, text.len()),
            message: format!("{} block(s) without `end`", blocks.len()),
        });
    }
    // From the end, so that earlier positions still hold; at one position an
    // insertion made later in the scan goes after one made earlier.
    let mut order: Vec<usize> = (0..inserts.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse((inserts[*i].0, *i)));
    let mut out = text.to_owned();
    for i in order {
        let (from, to, replacement) = &inserts[i];
        out.replace_range(*from..*to, replacement);
    }
    Ok((out, branches))
}

/// `inside` with every `include NAME DATA` as `include "twcov.clean" (list
/// NAME DATA)`, and the `(list NAME DATA)` of each call (nested ones too). An
/// include given its data by a pipe (`. | include "x"`) is left as it is.
fn rewrite_includes(inside: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(inside.len());
    let mut calls = Vec::new();
    let mut i = 0;
    while i < inside.len() {
        let c = inside[i..].chars().next().unwrap_or(' ');
        if matches!(c, '"' | '`' | '\'') {
            let end = skip_literal(inside, i);
            out.push_str(&inside[i..end]);
            i = end;
            continue;
        }
        let word_start = inside[..i]
            .chars()
            .last()
            .is_none_or(|p| !(p.is_alphanumeric() || "_.$".contains(p)));
        let rest = &inside[i..];
        if word_start
            && rest.starts_with("include")
            && rest["include".len()..].starts_with(char::is_whitespace)
        {
            let mut j = i + "include".len();
            let ops = operands(inside, &mut j, 2);
            if ops.len() == 2 {
                let (name, inner_name) = rewrite_includes(ops[0]);
                let (data, inner_data) = rewrite_includes(ops[1]);
                let call = format!("(list {name} {data})");
                out.push_str(&format!("include \"twcov.clean\" {call}"));
                calls.push(call);
                calls.extend(inner_name);
                calls.extend(inner_data);
                i = j;
                continue;
            }
        }
        out.push(c);
        i += c.len_utf8();
    }
    (out, calls)
}

/// Where the literal starting at `at` (`"…"`, `` `…` ``, `'…'`) ends.
fn skip_literal(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// Up to `n` operands of a command from `*at` on (a literal, a parenthesized
/// pipeline, or a word), stopping at a pipe or a closing parenthesis.
fn operands<'a>(text: &'a str, at: &mut usize, n: usize) -> Vec<&'a str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    while found.len() < n {
        while bytes.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
        let start = *at;
        match bytes.get(start) {
            None | Some(b'|' | b')') => break,
            Some(b'"' | b'`' | b'\'') => *at = skip_literal(text, start),
            Some(b'(') => {
                let mut depth = 0;
                while *at < bytes.len() {
                    match bytes[*at] {
                        b'"' | b'`' | b'\'' => {
                            *at = skip_literal(text, *at);
                            continue;
                        }
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                *at += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    *at += 1;
                }
            }
            Some(_) => {
                while bytes
                    .get(*at)
                    .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'|' | b')'))
                {
                    *at += 1;
                }
            }
        }
        found.push(&text[start..*at]);
    }
    found
}

fn close(branch: &Branch, at: usize) -> Branch {
    Branch {
        body: branch.body.start..at,
        ..branch.clone()
    }
}

/// The ids of the markers in a render, and the render without them.
pub fn markers(render: &str) -> (std::collections::BTreeSet<usize>, String) {
    let mut seen = std::collections::BTreeSet::new();
    let mut clean = String::with_capacity(render.len());
    let mut rest = render;
    // Helm trims a document's leading space, the marker's own among it.
    let tag = MARKER.trim_start();
    while let Some(at) = rest.find(tag) {
        let before = &rest[..at];
        let spaced = before.strip_suffix(' ');
        clean.push_str(spaced.unwrap_or(before));
        let after = &rest[at + tag.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse() {
            Ok(id) if after[digits..].starts_with(MARKER_END) => {
                seen.insert(id);
                rest = &after[digits + MARKER_END.len_utf8()..];
            }
            _ => {
                if spaced.is_some() {
                    clean.push(' ');
                }
                clean.push_str(tag);
                rest = after;
            }
        }
    }
    clean.push_str(rest);
    (seen, clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (String, Vec<Branch>) {
        instrument(text, &mut 0).unwrap()
    }

    #[test]
    fn every_branch_gets_a_marker_and_the_unwritten_else_is_added() {
        let (out, branches) = run("a: 1\n{{- if .Values.x }}\nb: 2\n{{- end }}\n");
        assert_eq!(
            out,
            "a: 1\n{{- if .Values.x }}{{\" #twcov:0;\"}}\nb: 2\n{{- else}}{{\" #twcov:1;\"}}{{- end }}\n"
        );
        let kinds: Vec<_> = branches.iter().map(|b| (b.kind.clone(), b.line)).collect();
        assert_eq!(
            kinds,
            [
                (BranchKind::Then(".Values.x".into()), 2),
                (BranchKind::NoneTrue(".Values.x".into()), 4)
            ]
        );
        assert_eq!(
            &"a: 1\n{{- if .Values.x }}\nb: 2\n{{- end }}\n"[branches[0].body.clone()],
            "\nb: 2\n"
        );
    }

    #[test]
    fn a_right_trim_moves_onto_the_marker() {
        let (out, _) = run("{{ range .Values.l -}}\n  - {{ . }}\n{{ else }}none{{ end }}");
        assert_eq!(
            out,
            "{{ range .Values.l -}}{{\" #twcov:0;\" -}}\n  - {{ . }}\n{{ else }}{{\" #twcov:1;\"}}none{{ end }}"
        );
    }

    #[test]
    fn else_if_chains_defines_and_withs() {
        let (_, branches) = run(
            "{{- define \"x.name\" -}}{{ if .a }}A{{ else if .b }}B{{ else with .c }}C{{ end }}{{- end }}",
        );
        let kinds: Vec<_> = branches.into_iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            [
                BranchKind::Define("\"x.name\"".into()),
                BranchKind::Then(".a".into()),
                BranchKind::ElseIf(".b".into()),
                BranchKind::With(".c".into()),
                BranchKind::NoneTrue(".a".into()),
            ]
        );
    }

    #[test]
    fn includes_return_clean_output_and_print_their_markers_before() {
        let (out, _) = run(
            "  {{- with include \"a\" (dict \"x\" (include \"b\" .)) }}y{{ end }}\nz: {{ . | include \"c\" }}",
        );
        assert_eq!(
            out,
            "  {{- include \"twcov.markers\" (list \"a\" (dict \"x\" (include \"twcov.clean\" (list \"b\" .))))}}\
             {{include \"twcov.markers\" (list \"b\" .)}}\
             {{- with include \"twcov.clean\" (list \"a\" (dict \"x\" (include \"twcov.clean\" (list \"b\" .)))) }}\
             {{\" #twcov:0;\"}}y{{else}}{{\" #twcov:1;\"}}{{ end }}\nz: {{ . | include \"c\" }}"
        );
    }

    #[test]
    fn a_value_prints_its_includes_markers_at_the_end_of_its_line() {
        let (out, _) = run("ref: {name: {{ include \"n\" . | quote }}, key: k}\nnext: 1");
        assert_eq!(
            out,
            "ref: {name: {{ include \"twcov.clean\" (list \"n\" .) | quote }}, key: k}\
             {{include \"twcov.markers\" (list \"n\" .)}}\nnext: 1"
        );
    }

    #[test]
    fn strings_and_comments_do_not_end_actions() {
        let (out, branches) =
            run("{{/* {{ if }} */}}{{ if eq .x \"}}\" }}y{{ end }}{{ printf `}}` }}{{ '}' }}");
        assert_eq!(branches.len(), 2, "{out}");
    }

    #[test]
    fn broken_templates_are_errors_with_the_line() {
        for (text, message) in [
            ("a\n{{ if .x }}", "block(s) without `end`"),
            ("{{ end }}", "`end` without a block"),
            ("a\n\n{{ \"open }}", "unterminated quoted string"),
            ("{{ if .x }", "unclosed action"),
        ] {
            let err = instrument(text, &mut 0).unwrap_err();
            assert!(err.message.contains(message), "{text:?}: {err}");
        }
        assert_eq!(instrument("a\n\n{{ \"open }}", &mut 0).unwrap_err().line, 3);
    }

    #[test]
    fn markers_are_read_and_taken_out() {
        let (ids, clean) =
            markers("#twcov:1;\na: #twcov:3; 1\nb: #twcov:12;345\n c #twcov:x #twcov:7");
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), [1, 3, 12]);
        assert_eq!(clean, "\na: 1\nb:345\n c #twcov:x #twcov:7");
    }
}
