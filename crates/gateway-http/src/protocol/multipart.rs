//! `multipart/form-data` bodies for the binding resources that upload files
//! (`audio.transcriptions`, `images.edit`, ...). Written here rather than taken from a
//! crate: the encoder is a few lines, and the HTTP client crates that have one would
//! bring a second HTTP stack into the tree.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

/// One file field.
#[derive(Debug, Clone)]
pub struct FilePart {
    /// The form field (`file`, `image`, `mask`).
    pub field: String,
    /// The file name sent with it.
    pub filename: String,
    /// Its content type.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Bytes,
}

/// The body and its content type: `fields` as text parts (arrays as repeated `name[]`
/// parts, objects as JSON text), then the files.
pub fn multipart_body(fields: &Map<String, Value>, files: &[FilePart], boundary: &str) -> (String, Bytes) {
    let mut out = BytesMut::new();
    let mut text_part = |name: &str, value: &str| {
        out.put_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n", quote(name)).as_bytes(),
        );
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    };
    for (name, value) in fields {
        match value {
            Value::Null => {}
            Value::String(s) => text_part(name, s),
            Value::Array(items) => {
                for item in items {
                    text_part(&format!("{name}[]"), &scalar(item));
                }
            }
            other => text_part(name, &scalar(other)),
        }
    }
    for file in files {
        out.put_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                quote(&file.field),
                quote(&file.filename),
                file.content_type.as_deref().unwrap_or("application/octet-stream"),
            )
            .as_bytes(),
        );
        out.put_slice(&file.data);
        out.put_slice(b"\r\n");
    }
    out.put_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), out.freeze())
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A name inside a quoted header parameter: no quotes or line breaks can escape it.
fn quote(name: &str) -> String {
    name.chars().map(|c| if matches!(c, '"' | '\r' | '\n') { '_' } else { c }).collect()
}
