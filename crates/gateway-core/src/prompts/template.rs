//! Mustache templates for the prompt library: parsed once when the registry loads, rendered
//! per request with the caller's variables.
//!
//! The Mustache tags prompts use: `{{name}}` and dotted `{{a.b}}` (and `{{.}}`, the current
//! item), `{{{name}}}` / `{{& name}}`, sections `{{#name}}…{{/name}}` (over a list, once per
//! item; over an object, inside it; once for any other truthy value), inverted sections
//! `{{^name}}…{{/name}}`, comments `{{! … }}` and partials `{{> name}}`; a section, comment
//! or partial tag alone on its line removes the line (Mustache's standalone tags, without
//! re-indenting a partial). Two decisions differ
//! from Mustache for HTML, because a prompt is not HTML:
//! - values are inserted as they are: no HTML escaping (`{{x}}` and `{{{x}}}` are the same);
//! - a variable that is interpolated but not given is an error naming it, not an empty
//!   string (a section over a missing name is simply false: that is how optional parts are
//!   written).
//!
//! Rendering is one pass over the parsed tree: a value is text in the output, never read
//! again as template syntax. The caller's variables steer the work (a list section repeats
//! its body per item), so the output is bounded ([`MAX_OUTPUT`]) and so is partial depth.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

/// The largest rendered prompt, bytes.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// How deep partials may include partials.
pub const MAX_PARTIAL_DEPTH: usize = 16;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Variable(Name),
    Section { name: Name, inverted: bool, body: Vec<Node> },
    Partial(String),
}

/// A dotted name (`a.b`), or the current item (`.`: no segments).
#[derive(Debug, Clone, PartialEq)]
struct Name(Vec<String>);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str(".") } else { f.write_str(&self.0.join(".")) }
    }
}

/// Why a template does not parse: what, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {at})")]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the template.
    pub at: usize,
}

/// Why a render failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A variable the template interpolates was not given.
    #[error("the variable `{0}` is not set")]
    MissingVariable(String),
    /// A partial the template includes does not exist.
    #[error("the partial `{0}` does not exist")]
    UnknownPartial(String),
    /// The rendered text passed [`MAX_OUTPUT`].
    #[error("the rendered prompt is larger than {MAX_OUTPUT} bytes")]
    TooLarge,
    /// Partials included partials past [`MAX_PARTIAL_DEPTH`] (or in a circle).
    #[error("partials nest deeper than {MAX_PARTIAL_DEPTH} (a partial including itself?)")]
    TooDeep,
}

impl Template {
    /// Parse `source`.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        let mut parser = Parser { source, at: 0 };
        let (nodes, closed_by) = parser.nodes()?;
        if let Some((name, at)) = closed_by {
            return Err(ParseError { message: format!("`{{{{/{name}}}}}` closes no section"), at });
        }
        Ok(Self { nodes })
    }

    /// The names of the partials this template includes (not those they include).
    pub fn partials(&self) -> Vec<&str> {
        fn walk<'a>(nodes: &'a [Node], out: &mut Vec<&'a str>) {
            for node in nodes {
                match node {
                    Node::Partial(name) if !out.contains(&name.as_str()) => out.push(name),
                    Node::Section { body, .. } => walk(body, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }

    /// Render with `variables` (a JSON object), partials looked up by name in `partials`.
    pub fn render(&self, variables: &Value, partials: &HashMap<String, Template>) -> Result<String, RenderError> {
        let mut out = String::new();
        let mut stack = vec![variables];
        render(&self.nodes, &mut stack, partials, 0, &mut out)?;
        Ok(out)
    }
}

fn render<'v>(
    nodes: &'v [Node],
    stack: &mut Vec<&'v Value>,
    partials: &'v HashMap<String, Template>,
    depth: usize,
    out: &mut String,
) -> Result<(), RenderError> {
    for node in nodes {
        match node {
            Node::Text(text) => push(out, text)?,
            Node::Variable(name) => match lookup(stack, name) {
                Some(Value::String(s)) => push(out, s)?,
                Some(Value::Null) => {}
                Some(other) => push(out, &other.to_string())?,
                None => return Err(RenderError::MissingVariable(name.to_string())),
            },
            Node::Section { name, inverted, body } => {
                let value = lookup(stack, name);
                if *inverted {
                    if !truthy(value) {
                        render(body, stack, partials, depth, out)?;
                    }
                    continue;
                }
                match value {
                    Some(Value::Array(items)) => {
                        for item in items {
                            stack.push(item);
                            let rendered = render(body, stack, partials, depth, out);
                            stack.pop();
                            rendered?;
                        }
                    }
                    Some(value) if truthy(Some(value)) => {
                        stack.push(value);
                        let rendered = render(body, stack, partials, depth, out);
                        stack.pop();
                        rendered?;
                    }
                    _ => {}
                }
            }
            Node::Partial(name) => {
                if depth >= MAX_PARTIAL_DEPTH {
                    return Err(RenderError::TooDeep);
                }
                let partial = partials.get(name).ok_or_else(|| RenderError::UnknownPartial(name.clone()))?;
                render(&partial.nodes, stack, partials, depth + 1, out)?;
            }
        }
    }
    Ok(())
}

fn push(out: &mut String, text: &str) -> Result<(), RenderError> {
    if out.len() + text.len() > MAX_OUTPUT {
        return Err(RenderError::TooLarge);
    }
    out.push_str(text);
    Ok(())
}

/// Mustache's lookup: the first segment from the innermost context outwards, the rest
/// inside what it found.
fn lookup<'v>(stack: &[&'v Value], name: &Name) -> Option<&'v Value> {
    let Some((first, rest)) = name.0.split_first() else {
        return stack.last().copied();
    };
    let mut found = stack.iter().rev().find_map(|context| context.get(first))?;
    for segment in rest {
        found = found.get(segment)?;
    }
    Some(found)
}

/// False for what is not there, `null`, `false`, `""` and `[]`.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

/// A `{{/name}}` tag: its name and where it is.
type Closing = (String, usize);

struct Parser<'s> {
    source: &'s str,
    at: usize,
}

impl Parser<'_> {
    /// Nodes up to the end, or up to a `{{/name}}` (returned with its position).
    fn nodes(&mut self) -> Result<(Vec<Node>, Option<Closing>), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.source[self.at..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_owned()));
                }
                self.at = self.source.len();
                return Ok((nodes, None));
            };
            let tag_at = self.at + open;
            let (tag, end) = tag_at_offset(self.source, tag_at)?;
            let tag = tag.trim();
            // A section, comment or partial tag alone on its line takes the line with it
            // (Mustache's standalone tags), so templates can be laid out on lines.
            let text_start = self.at;
            let own_line = tag.starts_with(['#', '^', '/', '!', '>']);
            let text_end = match standalone(self.source, tag_at, end).filter(|_| own_line) {
                // The line starts within this text: a tag before it would not be blank.
                Some((line_start, line_end)) => {
                    self.at = line_end;
                    line_start.saturating_sub(text_start)
                }
                None => {
                    self.at = end;
                    open
                }
            };
            if text_end > 0 {
                nodes.push(Node::Text(rest[..text_end].to_owned()));
            }
            let error = |message: String| ParseError { message, at: tag_at };
            match tag.chars().next() {
                Some('!') => {}
                Some('#' | '^') => {
                    let name = tag[1..].trim();
                    let (body, closed_by) = self.nodes()?;
                    match closed_by {
                        Some((closing, _)) if closing == name => {}
                        Some((closing, at)) => {
                            return Err(ParseError { message: format!("`{{{{/{closing}}}}}` closes `{name}`"), at });
                        }
                        None => return Err(error(format!("the section `{name}` is never closed"))),
                    }
                    nodes.push(Node::Section { name: name_of(name, tag_at)?, inverted: tag.starts_with('^'), body });
                }
                Some('/') => return Ok((nodes, Some((tag[1..].trim().to_owned(), tag_at)))),
                Some('>') => {
                    let name = tag[1..].trim();
                    if name.is_empty() {
                        return Err(error("a partial needs a name".into()));
                    }
                    nodes.push(Node::Partial(name.to_owned()));
                }
                Some('&') => nodes.push(Node::Variable(name_of(tag[1..].trim(), tag_at)?)),
                Some('{') => {
                    let inner = tag[1..].strip_suffix('}').ok_or_else(|| error("`{{{` is closed by `}}}`".into()))?;
                    nodes.push(Node::Variable(name_of(inner.trim(), tag_at)?));
                }
                Some('=') => return Err(error("changing delimiters is not supported".into())),
                _ => nodes.push(Node::Variable(name_of(tag, tag_at)?)),
            }
        }
    }
}

/// For a tag from `start` to `end` with only spaces and tabs around it on its line: the
/// line's start and the position after its newline (or the end of the source).
fn standalone(source: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let blank = |s: &str| s.bytes().all(|b| b == b' ' || b == b'\t');
    if !blank(&source[line_start..start]) {
        return None;
    }
    let after = &source[end..];
    let (rest_of_line, line_end) = match after.find('\n') {
        Some(i) => (after[..i].strip_suffix('\r').unwrap_or(&after[..i]), end + i + 1),
        None => (after, source.len()),
    };
    blank(rest_of_line).then_some((line_start, line_end))
}

/// The text of the tag opening at `at` in `source`, and the position after it.
fn tag_at_offset(source: &str, at: usize) -> Result<(&str, usize), ParseError> {
    let inner_start = at + 2;
    let rest = &source[inner_start..];
    // A triple mustache closes with `}}}`.
    let close = if rest.starts_with('{') { rest.find("}}}").map(|i| i + 1) } else { rest.find("}}") };
    let close = close.ok_or_else(|| ParseError { message: "`{{` is never closed".into(), at })?;
    Ok((&rest[..close], inner_start + close + 2))
}

fn name_of(text: &str, at: usize) -> Result<Name, ParseError> {
    if text == "." {
        return Ok(Name(Vec::new()));
    }
    let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
    let plain = |s: &String| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'));
    if segments.iter().all(plain) {
        Ok(Name(segments))
    } else {
        Err(ParseError { message: format!("`{text}` is not a variable name"), at })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn render(template: &str, variables: Value) -> Result<String, RenderError> {
        let partials = HashMap::from([
            ("sig".to_owned(), Template::parse("Be brief, {{name}}.").unwrap()),
            ("loop".to_owned(), Template::parse("{{>loop}}").unwrap()),
        ]);
        Template::parse(template).unwrap().render(&variables, &partials)
    }

    #[test]
    fn variables_dotted_names_and_the_current_item() {
        let vars = json!({"name": "Ada", "user": {"plan": "pro", "seats": 3}, "tags": ["a", "b"], "none": null});
        assert_eq!(render("Hi {{name}}, {{ user.plan }} x{{user.seats}}", vars.clone()).unwrap(), "Hi Ada, pro x3");
        assert_eq!(render("{{#tags}}[{{.}}]{{/tags}}", vars.clone()).unwrap(), "[a][b]");
        assert_eq!(render("<{{none}}>", vars.clone()).unwrap(), "<>", "null renders as nothing");
        assert_eq!(render("{{user}}", vars).unwrap(), r#"{"plan":"pro","seats":3}"#, "objects as JSON");
    }

    #[test]
    fn values_are_inserted_as_they_are_never_escaped_or_re_read() {
        let raw = "<b>&\"'</b> {{name}} {{>sig}}";
        let vars = json!({"q": raw, "name": "Ada"});
        assert_eq!(render("{{q}}|{{{q}}}|{{& q}}", vars).unwrap(), format!("{raw}|{raw}|{raw}"));
    }

    #[test]
    fn sections_inverted_sections_and_comments() {
        let vars = json!({"vip": true, "items": [{"n": 1}, {"n": 2}], "empty": [], "blank": "", "who": {"name": "Bo"}});
        assert_eq!(render("{{#vip}}VIP {{/vip}}{{^vip}}regular{{/vip}}", vars.clone()).unwrap(), "VIP ");
        assert_eq!(render("{{#items}}{{n}},{{/items}}", vars.clone()).unwrap(), "1,2,");
        assert_eq!(render("{{^empty}}none{{/empty}}{{^blank}}!{{/blank}}", vars.clone()).unwrap(), "none!");
        assert_eq!(render("{{#missing}}x{{/missing}}{{^missing}}y{{/missing}}", vars.clone()).unwrap(), "y");
        assert_eq!(render("{{#who}}{{name}}{{/who}}{{! a comment }}", vars.clone()).unwrap(), "Bo");
        // An outer name is seen from inside a section.
        assert_eq!(render("{{#items}}{{n}}{{vip}} {{/items}}", vars).unwrap(), "1true 2true ");
    }

    #[test]
    fn a_tag_alone_on_its_line_takes_the_line_with_it() {
        let vars = json!({"items": ["a", "b"], "vip": false});
        let list = "Items:\n{{#items}}\n- {{.}}\n{{/items}}\nEnd";
        assert_eq!(render(list, vars.clone()).unwrap(), "Items:\n- a\n- b\nEnd");
        assert_eq!(render("  {{! note }}  \r\nx", vars.clone()).unwrap(), "x");
        assert_eq!(render("a\n  {{^vip}}\nregular\n  {{/vip}}\n", vars.clone()).unwrap(), "a\nregular\n");
        assert_eq!(render("{{>sig}}\nnext", json!({"name": "Al"})).unwrap(), "Be brief, Al.next");
        // Not alone: other text, or a variable tag, keeps the line as it is.
        assert_eq!(render("x {{#vip}}y{{/vip}}\n", vars.clone()).unwrap(), "x \n");
        assert_eq!(render("{{#items}}{{.}}{{/items}}\n", vars).unwrap(), "ab\n");
    }

    #[test]
    fn partials_render_in_the_current_context_and_are_bounded() {
        assert_eq!(render("Hello. {{> sig}}", json!({"name": "Ada"})).unwrap(), "Hello. Be brief, Ada.");
        assert_eq!(render("{{>nope}}", json!({})), Err(RenderError::UnknownPartial("nope".into())));
        assert_eq!(render("{{>loop}}", json!({})), Err(RenderError::TooDeep));
        assert_eq!(Template::parse("{{>a}}{{#x}}{{>b}}{{>a}}{{/x}}").unwrap().partials(), ["a", "b"]);
    }

    #[test]
    fn a_missing_variable_is_named() {
        assert_eq!(
            render("Hi {{user.name}}", json!({"user": {}})),
            Err(RenderError::MissingVariable("user.name".into()))
        );
        assert_eq!(render("Hi {{name}}", json!({})), Err(RenderError::MissingVariable("name".into())));
    }

    #[test]
    fn malformed_templates_say_what_and_where() {
        let err = |t: &str| Template::parse(t).unwrap_err();
        assert_eq!(err("a {{name").at, 2);
        assert!(err("{{#a}}x").message.contains("never closed"));
        assert!(err("{{#a}}x{{/b}}").message.contains("closes `a`"));
        assert!(err("x{{/a}}").message.contains("closes no section"));
        assert!(err("{{a b}}").message.contains("not a variable name"));
        assert!(err("{{=<% %>=}}").message.contains("delimiters"));
        assert!(err("{{{a}}").message.contains("never closed"));
    }

    #[test]
    fn output_is_bounded_whatever_the_variables() {
        let big = "x".repeat(MAX_OUTPUT / 2 + 1);
        assert_eq!(render("{{a}}{{a}}", json!({"a": big})), Err(RenderError::TooLarge));
        let items: Vec<Value> = (0..100_000).map(|_| json!("0123456789")).collect();
        assert_eq!(render("{{#i}}{{.}}{{.}}{{.}}{{.}}{{.}}{{/i}}", json!({"i": items})), Err(RenderError::TooLarge));
    }
}
