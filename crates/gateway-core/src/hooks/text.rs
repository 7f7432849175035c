//! What a check reads: the text of a request or an answer, in any of the three dialects,
//! and the JSON objects and code blocks inside a text.

use serde_json::Value;

/// The text a before-request check reads (as Portkey's `getText`): the last message's
/// text (a string, or its text parts joined by newlines), else `prompt`, else `input`.
pub fn request_text(request: &Value) -> String {
    if let Some(last) = request.get("messages").and_then(Value::as_array).and_then(|m| m.last()) {
        return content_text(last.get("content"));
    }
    match request.get("prompt").or_else(|| request.get("input")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            // Completions' prompt list, embeddings' inputs, or Responses' input items.
            let texts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    item => content_text(item.get("content")),
                })
                .filter(|t| !t.is_empty())
                .collect();
            match texts.last() {
                // Responses' input is a conversation: its last item, as for `messages`.
                Some(last) if items.iter().any(Value::is_object) => last.clone(),
                _ => texts.join("\n"),
            }
        }
        _ => String::new(),
    }
}

/// The text an after-request check reads: the first choice's message (or completion
/// text) for OpenAI answers, the text blocks of an Anthropic message, the output text of
/// a Responses answer.
pub fn answer_text(answer: &Value) -> String {
    if let Some(choice) = answer.get("choices").and_then(Value::as_array).and_then(|c| c.first()) {
        return match choice.get("message") {
            Some(message) => content_text(message.get("content")),
            None => choice.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
        };
    }
    if let Some(output) = answer.get("output").and_then(Value::as_array) {
        let texts: Vec<String> = output
            .iter()
            .filter(|item| item.get("type").and_then(Value::as_str) == Some("message"))
            .map(|item| content_text(item.get("content")))
            .collect();
        return texts.join("\n");
    }
    content_text(answer.get("content"))
}

/// A message's content as text: a string, or the `text` of its parts joined by newlines.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let texts: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            texts.join("\n")
        }
        _ => String::new(),
    }
}

/// Adds up the text of a streamed answer from its events, whatever the dialect: OpenAI
/// chunks (`choices[0].delta.content`, `choices[0].text`), Anthropic's `text_delta`s,
/// Responses' `response.output_text.delta`s. Stops growing past `max` bytes.
#[derive(Debug, Default)]
pub struct StreamText {
    text: String,
    max: usize,
}

impl StreamText {
    /// An empty text that keeps at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { text: String::new(), max }
    }

    /// Add one event's text.
    pub fn push(&mut self, event: &[u8]) {
        if self.text.len() >= self.max {
            return;
        }
        let Ok(event) = crate::json::from_slice::<Value>(event) else { return };
        let piece = if let Some(choice) = event.get("choices").and_then(Value::as_array).and_then(|c| c.first()) {
            let delta = choice.get("delta").and_then(|d| d.get("content"));
            delta.or_else(|| choice.get("text")).and_then(Value::as_str)
        } else {
            match event.get("type").and_then(Value::as_str) {
                Some("content_block_delta") => event.get("delta").and_then(|d| d.get("text")).and_then(Value::as_str),
                Some("response.output_text.delta") => event.get("delta").and_then(Value::as_str),
                _ => None,
            }
        };
        if let Some(piece) = piece {
            self.text.push_str(piece);
        }
    }

    /// The text so far.
    pub fn into_text(self) -> String {
        self.text
    }
}

/// The fenced code blocks of a text: `(language tag, code)`.
pub fn code_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        let Some(line_end) = after.find('\n') else { break };
        let tag = after[..line_end].trim();
        let body = &after[line_end + 1..];
        let Some(close) = body.find("```") else { break };
        blocks.push((tag, body[..close].trim_end_matches('\n')));
        rest = &body[close + 3..];
    }
    blocks
}

/// The JSON values a text holds, for the JSON checks: its fenced code blocks that parse;
/// else the whole text if it parses; else every balanced `{...}` in it that parses (a
/// scan that respects strings, so nested objects are whole, unlike Portkey's regex).
pub fn json_candidates(text: &str) -> Vec<Value> {
    let blocks: Vec<Value> =
        code_blocks(text).into_iter().filter_map(|(_, code)| serde_json::from_str(code.trim()).ok()).collect();
    if !blocks.is_empty() {
        return blocks;
    }
    if let Ok(whole) = serde_json::from_str::<Value>(text.trim())
        && whole.is_object()
    {
        return vec![whole];
    }
    objects(text.as_bytes())
}

/// The most JSON objects read from one text.
const MAX_CANDIDATES: usize = 64;

/// The balanced `{...}` spans of `bytes` that parse as JSON, outermost only, found in
/// one pass that respects strings: linear in the text, whatever it holds. An opening
/// brace never closed is skipped past (a few times at most, each a pass of its own).
fn objects(bytes: &[u8]) -> Vec<Value> {
    let mut found = Vec::new();
    let mut from = 0;
    for _ in 0..4 {
        let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, None);
        for (i, &b) in bytes.iter().enumerate().skip(from) {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' if depth > 0 => in_string = true,
                b'{' => {
                    if depth == 0 {
                        start = Some(i);
                    }
                    depth += 1;
                }
                b'}' if depth > 0 => {
                    depth -= 1;
                    if depth == 0
                        && let Some(s) = start.take()
                    {
                        if let Ok(value) = crate::json::from_slice::<Value>(&bytes[s..=i]) {
                            found.push(value);
                        }
                        if found.len() == MAX_CANDIDATES {
                            return found;
                        }
                    }
                }
                _ => {}
            }
        }
        match start {
            // An unclosed brace hid what follows it: look again from just after it.
            Some(open) if depth > 0 => from = open + 1,
            _ => break,
        }
    }
    found
}

/// Apply `rewrite` to every text a request sends a model (messages of every role,
/// `system`, `prompt`, `input`, `instructions`): what PII redaction rewrites.
pub fn rewrite_request_texts(request: &mut Value, rewrite: &mut dyn FnMut(&str) -> Option<String>) {
    let Some(object) = request.as_object_mut() else { return };
    for key in ["messages", "system", "prompt", "input", "instructions"] {
        if let Some(value) = object.get_mut(key) {
            rewrite_texts(value, rewrite);
        }
    }
}

/// Apply `rewrite` to the texts of an answer (choices' messages and texts, Anthropic's
/// content blocks, Responses' output).
pub fn rewrite_answer_texts(answer: &mut Value, rewrite: &mut dyn FnMut(&str) -> Option<String>) {
    let Some(object) = answer.as_object_mut() else { return };
    for key in ["choices", "content", "output"] {
        if let Some(value) = object.get_mut(key) {
            rewrite_texts(value, rewrite);
        }
    }
}

/// Rewrite the strings under `value` that are text: strings in arrays, and the `content`,
/// `text`, `message` and `input` fields of objects (never ids, roles, types or URLs).
fn rewrite_texts(value: &mut Value, rewrite: &mut dyn FnMut(&str) -> Option<String>) {
    match value {
        Value::String(s) => {
            if let Some(new) = rewrite(s) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_texts(item, rewrite)),
        Value::Object(object) => {
            for (key, field) in object.iter_mut() {
                if matches!(key.as_str(), "content" | "text" | "message" | "input" | "output") {
                    rewrite_texts(field, rewrite);
                }
            }
        }
        _ => {}
    }
}

/// The words of a text (runs of anything but Unicode whitespace, as JavaScript's
/// `split(/\s+/)`), counted a byte at a time: only the lead bytes of the few non-ASCII
/// whitespace characters (U+0085, U+00A0, U+1680, U+2000..U+205F, U+3000) are decoded.
pub(super) fn count_words(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let (mut words, mut in_word) = (0u64, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (space, width) = match b {
            b' ' | b'\t'..=b'\r' => (true, 1),
            0..=0x7f => (false, 1),
            0xc2 | 0xe1 | 0xe2 | 0xe3 => {
                let c = text[i..].chars().next().unwrap_or(' ');
                (c.is_whitespace(), c.len_utf8())
            }
            _ => (false, 1),
        };
        if !space && !in_word {
            words += 1;
        }
        in_word = !space;
        i += width;
    }
    words
}

/// The language a code fence's tag names (`py` → `Python`).
pub(super) fn language(tag: &str) -> &str {
    let tag = tag.split_whitespace().next().unwrap_or("");
    match tag.to_ascii_lowercase().as_str() {
        "py" | "python" | "python3" => "Python",
        "js" | "javascript" | "jsx" | "node" => "JavaScript",
        "ts" | "typescript" | "tsx" => "TypeScript",
        "sql" | "postgresql" | "mysql" | "sqlite" => "SQL",
        "rs" | "rust" => "Rust",
        "go" | "golang" => "Go",
        "java" => "Java",
        "c" | "h" => "C",
        "cpp" | "c++" | "cc" | "hpp" => "C++",
        "cs" | "csharp" | "c#" => "C#",
        "rb" | "ruby" => "Ruby",
        "php" => "PHP",
        "sh" | "bash" | "shell" | "zsh" => "Shell",
        "swift" => "Swift",
        "kt" | "kotlin" => "Kotlin",
        "html" => "HTML",
        "css" => "CSS",
        "json" => "JSON",
        "yaml" | "yml" => "YAML",
        "" => "unknown",
        _ => tag,
    }
}

/// The `http(s)://` URLs in a text (as Portkey finds them).
pub(super) fn find_urls(text: &str) -> Vec<&str> {
    static URL: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| super::pii::fixed(r#"https?://[^\s,"'{}\[\]<>()]+"#));
    URL.find_iter(text).map(|m| m.as_str().trim_end_matches(['.', ';', ':', '!', '?'])).collect()
}

/// Whether a URL is well formed: it parses, and its host is an IP address or a DNS name
/// of valid labels with an alphabetic top-level domain. Portkey also fetches each URL
/// (or resolves it); a gateway that fetched what a model wrote would let any answer make
/// it call any address, so this check reads the URL and never follows it.
pub(super) fn is_well_formed_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else { return false };
    let Some(host) = uri.host() else { return false };
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn the_request_text_is_the_last_messages() {
        let chat = json!({"messages": [{"role": "user", "content": "first"},
                                      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]}]});
        assert_eq!(request_text(&chat), "a\nb");
        assert_eq!(request_text(&json!({"prompt": "p"})), "p");
        assert_eq!(request_text(&json!({"input": ["x", "y"]})), "x\ny");
        let responses = json!({"input": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]});
        assert_eq!(request_text(&responses), "two");
        assert_eq!(request_text(&json!({})), "");
    }

    #[test]
    fn the_answer_text_in_each_dialect() {
        assert_eq!(answer_text(&json!({"choices": [{"message": {"content": "hi"}}]})), "hi");
        assert_eq!(answer_text(&json!({"choices": [{"text": "done"}]})), "done");
        assert_eq!(answer_text(&json!({"content": [{"type": "text", "text": "claude"}]})), "claude");
        let responses = json!({"output": [{"type": "reasoning"}, {"type": "message", "content": [{"type": "output_text", "text": "r"}]}]});
        assert_eq!(answer_text(&responses), "r");
    }

    #[test]
    fn stream_text_adds_up_every_dialect() {
        let mut text = StreamText::new(100);
        text.push(br#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#);
        text.push(br#"{"choices":[{"delta":{"content":"Hel"}}]}"#);
        text.push(br#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"lo"}}"#);
        text.push(br#"{"type":"response.output_text.delta","delta":"!"}"#);
        text.push(b"not json");
        assert_eq!(text.into_text(), "Hello!");
    }

    #[test]
    fn json_is_found_in_blocks_whole_texts_and_prose() {
        assert_eq!(json_candidates("```json\n{\"a\": 1}\n```"), vec![json!({"a": 1})]);
        assert_eq!(json_candidates(" {\"a\": {\"b\": \"}\"}} "), vec![json!({"a": {"b": "}"}})]);
        assert_eq!(
            json_candidates("x {\"a\": {\"b\": 2}} y {bad} {\"c\": 3}"),
            vec![json!({"a": {"b": 2}}), json!({"c": 3})]
        );
        assert!(json_candidates("no json").is_empty());
        assert_eq!(json_candidates("I think { maybe. Here: {\"a\": 1}"), vec![json!({"a": 1})]);
        // Linear whatever the text: a megabyte of braces is read in one pass.
        assert!(json_candidates(&"{".repeat(1 << 20)).is_empty());
        assert_eq!(
            code_blocks("```py\nprint(1)\n```\ntext ```sql\nSELECT 1\n```"),
            vec![("py", "print(1)"), ("sql", "SELECT 1")]
        );
    }

    #[test]
    fn rewrites_touch_texts_only() {
        let mut request = json!({"model": "m@x.io", "messages": [{"role": "user", "content": [{"type": "text", "text": "a@x.io"}, {"type": "image_url", "image_url": {"url": "a@x.io"}}]}]});
        rewrite_request_texts(&mut request, &mut |s| Some(s.replace("a@x.io", "[E]")));
        assert_eq!(request["model"], "m@x.io");
        assert_eq!(request["messages"][0]["content"][0]["text"], "[E]");
        assert_eq!(request["messages"][0]["content"][1]["image_url"]["url"], "a@x.io");
        assert_eq!(request["messages"][0]["role"], "user");
    }
}
