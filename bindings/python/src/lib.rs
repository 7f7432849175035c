//! `gatewise._native`: the Python binding's Rust half.
//!
//! Only conversion and runtime bridging live here (see ../shared/STYLE.md): payloads
//! cross as JSON text, errors as JSON for `gatewise._errors.from_native`, and calls run on
//! pyo3-async-runtimes' tokio runtime — blocking with the GIL released for the sync API,
//! as asyncio awaitables (cancellation drops the Rust future) for the async one.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gateway_core::engine::RouteInfo;
use gateway_core::{Engine, GatewayError};
use gateway_http::client::{
    CallError, ClientOptions, Created, Gateway, HttpReplyBody, endpoint_from_name, error_json, route_json,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

type ItemStream = Pin<Box<dyn Stream<Item = Result<Bytes, GatewayError>> + Send>>;

/// One engine (and connection pool) per process, shared by every client.
fn engine() -> PyResult<Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| gateway_http::engine(gateway_http::TransportOptions::default()).map_err(|e| e.to_string()))
        .clone()
        .map_err(PyRuntimeError::new_err)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Build the Python exception for an error (`gatewise._errors.from_native` picks the class).
fn to_py_err(error: &GatewayError, route: &RouteInfo) -> PyErr {
    Python::attach(|py| {
        let payload = error_json(error, route).to_string();
        match py.import("gatewise._errors").and_then(|m| m.call_method1("from_native", (payload,))) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    })
}

fn call_err(e: CallError) -> PyErr {
    to_py_err(&e.error, &e.route)
}

fn plain_err(e: GatewayError) -> PyErr {
    to_py_err(&e, &RouteInfo::default())
}

fn parse_json(text: &str, what: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| plain_err(GatewayError::request("", format!("{what} is not valid JSON: {e}"))))
}

/// The client.
#[pyclass(frozen, module = "gatewise._native")]
struct NativeGateway {
    inner: Gateway,
}

#[pymethods]
impl NativeGateway {
    /// `options_json`: the client options as a JSON object.
    #[new]
    fn new(options_json: &str) -> PyResult<Self> {
        let options = ClientOptions::from_json(parse_json(options_json, "options")?).map_err(plain_err)?;
        Gateway::new(engine()?, options).map(|inner| Self { inner }).map_err(plain_err)
    }

    /// A client with these options replacing ours.
    fn with_options(&self, options_json: &str) -> PyResult<Self> {
        let overrides = ClientOptions::from_json(parse_json(options_json, "options")?).map_err(plain_err)?;
        self.inner.with_options(&overrides).map(|inner| Self { inner }).map_err(plain_err)
    }

    /// Blocking call with the GIL released. Returns `("reply", status, content_type, body,
    /// route_json)` or `("stream", NativeStream, route_json)`.
    fn create(&self, py: Python<'_>, endpoint: &str, body_json: &str) -> PyResult<Py<PyTuple>> {
        let endpoint = endpoint_from_name(endpoint).map_err(plain_err)?;
        let body = parse_json(body_json, "the request body")?;
        let inner = &self.inner;
        let created = py.detach(|| runtime().block_on(inner.create(endpoint, body))).map_err(call_err)?;
        created_to_py(py, created)
    }

    /// The same as an awaitable.
    fn acreate<'py>(&self, py: Python<'py>, endpoint: &str, body_json: &str) -> PyResult<Bound<'py, PyAny>> {
        let endpoint = endpoint_from_name(endpoint).map_err(plain_err)?;
        let body = parse_json(body_json, "the request body")?;
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let created = inner.create(endpoint, body).await.map_err(call_err)?;
            Python::attach(|py| created_to_py(py, created))
        })
    }

    /// The dry-run plan as JSON text.
    #[pyo3(signature = (endpoint, body_json, metadata_json=None, seed=None))]
    fn route(
        &self,
        endpoint: &str,
        body_json: &str,
        metadata_json: Option<&str>,
        seed: Option<u64>,
    ) -> PyResult<String> {
        let endpoint = endpoint_from_name(endpoint).map_err(plain_err)?;
        let body = parse_json(body_json, "the request body")?;
        let metadata = metadata_json.map(|m| parse_json(m, "metadata")).transpose()?;
        let plan = self.inner.route(endpoint, body, metadata, seed).map_err(plain_err)?;
        Ok(serde_json::json!({ "targets": plan }).to_string())
    }

    /// HTTP-shaped call for the httpx transports, blocking with the GIL released.
    /// Returns `(status, headers, body)` where body is `bytes` or a `NativeStream`.
    fn http(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> PyResult<Py<PyTuple>> {
        let headers = header_map(headers)?;
        let inner = &self.inner;
        let reply = py.detach(|| runtime().block_on(inner.http(method, url, headers, Bytes::from(body))));
        http_reply_to_py(py, reply)
    }

    /// The same as an awaitable.
    fn ahttp<'py>(
        &self,
        py: Python<'py>,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let headers = header_map(headers)?;
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let reply = inner.http(&method, &url, headers, Bytes::from(body)).await;
            Python::attach(|py| http_reply_to_py(py, reply))
        })
    }
}

fn header_map(headers: Vec<(String, String)>) -> PyResult<http::HeaderMap> {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| plain_err(GatewayError::request("headers", format!("invalid header name {name:?}"))))?;
        let value = http::HeaderValue::from_str(&value)
            .map_err(|_| plain_err(GatewayError::request("headers", format!("invalid value for header {name}"))))?;
        map.append(name, value);
    }
    Ok(map)
}

fn created_to_py(py: Python<'_>, created: Created) -> PyResult<Py<PyTuple>> {
    let tuple = match created {
        Created::Reply(reply) => PyTuple::new(
            py,
            [
                "reply".into_pyobject(py)?.into_any(),
                reply.status.into_pyobject(py)?.into_any(),
                reply.content_type.into_pyobject(py)?.into_any(),
                PyBytes::new(py, &reply.body).into_any(),
                route_json(&reply.route).to_string().into_pyobject(py)?.into_any(),
            ],
        )?,
        Created::Stream(events, route) => PyTuple::new(
            py,
            [
                "stream".into_pyobject(py)?.into_any(),
                Bound::new(py, NativeStream::new(events))?.into_any(),
                route_json(&route).to_string().into_pyobject(py)?.into_any(),
            ],
        )?,
    };
    Ok(tuple.unbind())
}

fn http_reply_to_py(py: Python<'_>, reply: gateway_http::client::HttpReply) -> PyResult<Py<PyTuple>> {
    let headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = match reply.body {
        HttpReplyBody::Full(bytes) => PyBytes::new(py, &bytes).into_any(),
        HttpReplyBody::Stream(frames) => Bound::new(py, NativeStream::new(Box::pin(frames.map(Ok))))?.into_any(),
    };
    Ok(PyTuple::new(py, [reply.status.into_pyobject(py)?.into_any(), headers.into_pyobject(py)?.into_any(), body])?
        .unbind())
}

/// A pull-based stream of byte items (chunk JSON, or SSE frames). Dropping or closing it
/// drops the upstream response, which cancels the upstream request.
#[pyclass(frozen, module = "gatewise._native")]
struct NativeStream {
    inner: Arc<tokio::sync::Mutex<Option<ItemStream>>>,
}

impl NativeStream {
    fn new(stream: ItemStream) -> Self {
        Self { inner: Arc::new(tokio::sync::Mutex::new(Some(stream))) }
    }
}

async fn next_item(inner: Arc<tokio::sync::Mutex<Option<ItemStream>>>) -> Result<Option<Bytes>, GatewayError> {
    let mut guard = inner.lock().await;
    let Some(stream) = guard.as_mut() else { return Ok(None) };
    match stream.next().await {
        Some(Ok(bytes)) => Ok(Some(bytes)),
        Some(Err(e)) => {
            *guard = None;
            Err(e)
        }
        None => {
            *guard = None;
            Ok(None)
        }
    }
}

#[pymethods]
impl NativeStream {
    /// The next item (`bytes`), or `None` at the end. Blocks with the GIL released.
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        let inner = self.inner.clone();
        let item = py.detach(|| runtime().block_on(next_item(inner))).map_err(plain_err)?;
        Ok(item.map(|b| PyBytes::new(py, &b).unbind()))
    }

    /// The same as an awaitable.
    fn anext<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let item = next_item(inner).await.map_err(plain_err)?;
            Python::attach(|py| Ok(item.map(|b| PyBytes::new(py, &b).unbind())))
        })
    }

    /// Stop reading: the upstream request is cancelled.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        py.detach(|| runtime().block_on(async move { inner.lock().await.take() }));
    }
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeGateway>()?;
    m.add_class::<NativeStream>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
