//! `POST /v1/rerank` in Cohere's shape, for every provider that reranks.
//!
//! The caller sends `{model, query, documents, top_n, return_documents}` (documents as
//! strings, or objects with `text`) and gets `{id, results: [{index, relevance_score,
//! document?}], meta?, usage?}`, whoever answered. Jina speaks that already; Cohere's v2
//! API lost `return_documents`, so the documents are put back from the request; Voyage
//! names things its own way (`top_k`, `data`).

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::{ResponseContext, effective_params};
use crate::error::GatewayError;

/// How a provider's rerank API differs from the caller's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankDialect {
    /// Cohere's v2 `/rerank`: no `return_documents`; strings only.
    Cohere,
    /// Jina's `/rerank`: the caller's shape.
    Jina,
    /// Voyage's `/rerank`: `top_k`, and `data` in the answer.
    Voyage,
}

/// The caller's parameters, checked: the query, the documents as strings, and the rest.
struct Rerank<'a> {
    params: &'a Map<String, Value>,
    documents: Vec<&'a str>,
}

impl<'a> Rerank<'a> {
    fn read(params: &'a Value) -> Result<Self, GatewayError> {
        let params =
            params.as_object().ok_or_else(|| GatewayError::request("", "the request body must be a JSON object"))?;
        if params.get("query").and_then(Value::as_str).is_none() {
            return Err(GatewayError::request("query", "`query` must be a string"));
        }
        let list = params
            .get("documents")
            .and_then(Value::as_array)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| GatewayError::request("documents", "`documents` must be a non-empty list"))?;
        let documents = list
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.as_str().or_else(|| d.get("text").and_then(Value::as_str)).ok_or_else(|| {
                    GatewayError::request(format!("documents[{i}]"), "a document is a string or an object with `text`")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { params, documents })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.params.get(key).filter(|v| !v.is_null())
    }

    fn return_documents(&self) -> bool {
        self.get("return_documents").and_then(Value::as_bool).unwrap_or(false)
    }
}

/// The upstream body for `dialect`, and the caller's parameters left out of it.
pub(crate) fn request(
    dialect: RerankDialect,
    params: &Value,
) -> Result<(Map<String, Value>, Vec<String>), GatewayError> {
    let rerank = Rerank::read(params)?;
    let mut body = Map::new();
    let mut dropped = Vec::new();
    for key in ["model", "query"] {
        if let Some(v) = rerank.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    body.insert("documents".into(), json!(rerank.documents));
    let (top, own): (&str, &[&str]) = match dialect {
        RerankDialect::Cohere => ("top_n", &["max_tokens_per_doc"]),
        RerankDialect::Jina => ("top_n", &["return_documents"]),
        RerankDialect::Voyage => ("top_k", &["return_documents", "truncation"]),
    };
    if let Some(n) = rerank.get("top_n") {
        body.insert(top.into(), n.clone());
    }
    for key in own {
        if let Some(v) = rerank.get(key) {
            body.insert((*key).into(), v.clone());
        }
    }
    let known = ["model", "query", "documents", "top_n", "return_documents"];
    for key in rerank.params.keys() {
        let handled = known.contains(&key.as_str()) || own.contains(&key.as_str());
        if !handled && rerank.get(key).is_some() {
            dropped.push(key.clone());
        }
    }
    Ok((body, dropped))
}

/// A rerank answer from `provider` in the caller's shape.
pub(crate) fn answer_bytes(
    provider: &str,
    dialect: RerankDialect,
    cx: &ResponseContext<'_>,
    body: &[u8],
) -> Result<Bytes, GatewayError> {
    let upstream: Value =
        crate::json::from_slice(body).map_err(|e| GatewayError::invalid_upstream_response(provider, e))?;
    let params = effective_params(&cx.request.body, cx.settings)?;
    Ok(Bytes::from(answer(provider, dialect, &params, upstream)?.to_string()))
}

/// The upstream's answer in the caller's shape; `params` is the caller's request (Cohere's
/// documents are put back from it).
fn answer(provider: &str, dialect: RerankDialect, params: &Value, upstream: Value) -> Result<Value, GatewayError> {
    let rerank = Rerank::read(params)?;
    let mut answer = match (dialect, upstream) {
        (RerankDialect::Voyage, Value::Object(mut body)) => {
            let results = body.remove("data").unwrap_or_else(|| json!([]));
            let mut out = Map::new();
            out.insert("id".into(), Value::Null);
            out.insert("results".into(), results);
            for key in ["model", "usage"] {
                if let Some(v) = body.remove(key) {
                    out.insert(key.into(), v);
                }
            }
            Value::Object(out)
        }
        (_, body) => body,
    };
    let results = answer
        .get_mut("results")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| GatewayError::invalid_upstream_response(provider, "the rerank answer has no results"))?;
    for result in results.iter_mut() {
        let index = result.get("index").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok());
        match (rerank.return_documents(), index.and_then(|i| rerank.documents.get(i))) {
            // Every provider's document, as Cohere's v1 put it: `{text}`.
            (true, Some(text)) => result["document"] = json!({"text": text}),
            (false, _) => {
                if let Some(r) = result.as_object_mut() {
                    r.remove("document");
                }
            }
            (true, None) => {}
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_callers_shape_becomes_each_providers() {
        let params = json!({"model": "m", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1,
            "return_documents": true, "rank_fields": ["x"]});
        let (cohere, dropped) = request(RerankDialect::Cohere, &params).unwrap();
        assert_eq!(Value::Object(cohere), json!({"model": "m", "query": "q", "documents": ["a", "b"], "top_n": 1}));
        assert_eq!(dropped, ["rank_fields"]);
        let (voyage, _) = request(RerankDialect::Voyage, &params).unwrap();
        assert_eq!(
            Value::Object(voyage),
            json!({"model": "m", "query": "q", "documents": ["a", "b"], "top_k": 1, "return_documents": true})
        );
        let bad = json!({"model": "m", "query": "q", "documents": [1]});
        assert_eq!(request(RerankDialect::Jina, &bad).unwrap_err().param.as_deref(), Some("documents[0]"));
        let empty = json!({"model": "m", "query": "q", "documents": []});
        assert_eq!(request(RerankDialect::Jina, &empty).unwrap_err().param.as_deref(), Some("documents"));
    }

    #[test]
    fn answers_come_back_in_the_callers_shape_with_documents_when_asked() {
        let params = json!({"model": "m", "query": "q", "documents": ["a", "b"], "return_documents": true});
        let cohere = answer(
            "cohere",
            RerankDialect::Cohere,
            &params,
            json!({"id": "r", "results": [{"index": 1, "relevance_score": 0.9}], "meta": {}}),
        )
        .unwrap();
        assert_eq!(cohere["results"], json!([{"index": 1, "relevance_score": 0.9, "document": {"text": "b"}}]));
        let voyage = answer(
            "voyage",
            RerankDialect::Voyage,
            &json!({"model": "m", "query": "q", "documents": ["a", "b"]}),
            json!({"object": "list", "data": [{"index": 0, "relevance_score": 0.5, "document": "a"}],
                "model": "rerank-2", "usage": {"total_tokens": 7}}),
        )
        .unwrap();
        assert_eq!(
            voyage,
            json!({"id": null, "results": [{"index": 0, "relevance_score": 0.5}], "model": "rerank-2",
                "usage": {"total_tokens": 7}})
        );
    }
}
