//! `gatewise._native`: the Python binding's Rust half.
//!
//! Only conversion and runtime bridging live here (see ../shared/STYLE.md): payloads
//! cross as JSON text, errors as exceptions of the classes this module creates (picked
//! by `protocol::ErrorClass`, an exhaustive match on the error code). The sync API runs a
//! call on the calling thread, on a current-thread runtime of that thread's own, with the
//! GIL released: the request, its upstream connection's task and the answer never change
//! threads (the transport keeps a connection pool per runtime), which measured 50-60 µs
//! a call faster than handing the connection to a multi-thread runtime's workers. The
//! async API runs on pyo3-async-runtimes' runtime as asyncio awaitables (cancellation
//! drops the Rust future).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use gateway_core::engine::{RequestObserver, RequestRecord, RouteInfo};
use gateway_core::{Engine, GatewayError};
use gateway_http::client::{
    CallArgs, CallError, CallOptions, ClosableStream, Created, Gateway, header_name, header_value,
};
use gateway_http::protocol::{
    self, ErrorClass, FilePart, HttpReply, HttpReplyBody, OPTIONS, Options, RESOURCES, error_fields, route_json_text,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};

// The engine's own allocations (headers, bodies, futures) go to mimalloc, as in the server
// and the Node module: glibc's malloc and free cost a call 6k instructions more. Python's
// objects keep Python's allocator; nothing allocated here is freed by Python.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod from_json;
mod to_json;

/// The exception classes (Python names; a module of their own so they do not clash with
/// the engine's `GatewayError`).
mod exceptions {
    use pyo3::create_exception;
    use pyo3::exceptions::PyException;

    create_exception!(_native, GatewayError, PyException, "Base of every Gatewise error.");
    create_exception!(_native, APIStatusError, GatewayError, "The request failed with an HTTP status.");
    create_exception!(_native, APIConnectionError, GatewayError, "The upstream could not be reached.");
    create_exception!(_native, APITimeoutError, APIConnectionError, "An attempt exceeded its timeout.");
    create_exception!(_native, BadRequestError, APIStatusError, "400: the request (or a header) is invalid.");
    create_exception!(_native, ConfigError, BadRequestError, "The config (or a client option) is invalid.");
    create_exception!(_native, AuthenticationError, APIStatusError, "401.");
    create_exception!(_native, PermissionDeniedError, APIStatusError, "403.");
    create_exception!(_native, NotFoundError, APIStatusError, "404.");
    create_exception!(_native, ConflictError, APIStatusError, "409.");
    create_exception!(_native, UnprocessableEntityError, APIStatusError, "422.");
    create_exception!(_native, RateLimitError, APIStatusError, "429.");
    create_exception!(_native, InternalServerError, APIStatusError, "5xx.");
}

fn exception_type(py: Python<'_>, class: ErrorClass) -> Bound<'_, PyType> {
    match class {
        ErrorClass::BadRequest => py.get_type::<exceptions::BadRequestError>(),
        ErrorClass::Config => py.get_type::<exceptions::ConfigError>(),
        ErrorClass::Authentication => py.get_type::<exceptions::AuthenticationError>(),
        ErrorClass::PermissionDenied => py.get_type::<exceptions::PermissionDeniedError>(),
        ErrorClass::NotFound => py.get_type::<exceptions::NotFoundError>(),
        ErrorClass::Conflict => py.get_type::<exceptions::ConflictError>(),
        ErrorClass::UnprocessableEntity => py.get_type::<exceptions::UnprocessableEntityError>(),
        ErrorClass::RateLimit => py.get_type::<exceptions::RateLimitError>(),
        ErrorClass::InternalServer => py.get_type::<exceptions::InternalServerError>(),
        ErrorClass::ApiStatus => py.get_type::<exceptions::APIStatusError>(),
        ErrorClass::ApiTimeout => py.get_type::<exceptions::APITimeoutError>(),
        ErrorClass::ApiConnection => py.get_type::<exceptions::APIConnectionError>(),
    }
}

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

/// The calling thread's runtime for the sync API (made on its first call). A stream keeps
/// the runtime it was opened on: its connection is driven there, whichever thread reads it.
fn caller_runtime() -> PyResult<Arc<CallerRuntime>> {
    thread_local! {
        static CALLER: std::cell::OnceCell<Arc<CallerRuntime>> = const { std::cell::OnceCell::new() };
    }
    CALLER.with(|cell| {
        if let Some(runtime) = cell.get() {
            return Ok(runtime.clone());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("could not start a runtime: {e}")))?;
        Ok(cell.get_or_init(|| Arc::new(CallerRuntime(Some(runtime)))).clone())
    })
}

/// A calling thread's runtime. The last owner may be a stream collected on any thread,
/// even one inside another runtime, where dropping a runtime the usual way (waiting for
/// its tasks) panics: so it is shut down without waiting.
struct CallerRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for CallerRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &Self::Target {
        match &self.0 {
            Some(runtime) => runtime,
            None => unreachable!("taken only on drop"),
        }
    }
}

impl Drop for CallerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The exception for an error: its class, and the fields `gatewise._errors` documents
/// (`code`, `status_code`, `param`, `provider`, `retryable`, `errors`, `body`, `route`).
fn to_py_err(error: &GatewayError, route: &RouteInfo) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let err = PyErr::from_type(exception_type(py, ErrorClass::of(error)), (error.message.clone(),));
            let fields = error_fields(error, route).to_string();
            py.import("gatewise._errors")?.call_method1("_fill", (err.value(py), fields))?;
            Ok(err)
        };
        build().unwrap_or_else(|e| e)
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

fn options(options_json: &str) -> PyResult<Options> {
    Options::from_json(parse_json(options_json, "options")?).map_err(plain_err)
}

/// `(field, filename, content_type, data)` tuples from `gatewise._client`.
type PyFile = (String, String, Option<String>, Vec<u8>);

fn call_args(params: &Bound<'_, PyAny>, files: Vec<PyFile>) -> PyResult<CallArgs> {
    let files = files
        .into_iter()
        .map(|(field, filename, content_type, data)| FilePart {
            field,
            filename,
            content_type,
            data: Bytes::from(data),
        })
        .collect();
    Ok(CallArgs { params: to_json::dumps(params)?, files })
}

/// The client.
#[pyclass(frozen, module = "gatewise._native")]
struct NativeGateway {
    inner: Gateway,
}

#[pymethods]
impl NativeGateway {
    /// `options_json`: the client options as a JSON object. `on_log`: called with each
    /// request's record as JSON text (the `gatewise` package parses it).
    #[new]
    #[pyo3(signature = (options_json, on_log=None))]
    fn new(options_json: &str, on_log: Option<Py<PyAny>>) -> PyResult<Self> {
        let mut engine = engine()?;
        if let Some(callback) = on_log {
            engine = engine.with_observer(Arc::new(LogCallback(callback)));
        }
        Gateway::from_json(engine, parse_json(options_json, "options")?).map(|inner| Self { inner }).map_err(plain_err)
    }

    /// A client with these options laid over ours.
    fn with_options(&self, options_json: &str) -> PyResult<Self> {
        self.inner.with_options(&options(options_json)?).map(|inner| Self { inner }).map_err(plain_err)
    }

    /// Blocking call with the GIL released. `method` is a resource path
    /// (`chat.completions.create`); `params` the request (a dict, written as the JSON body
    /// here); `call_json` the per-call options. Returns
    /// `("reply", status, content_type, body, NativeRoute)` or `("stream", NativeStream)`.
    fn create(
        &self,
        py: Python<'_>,
        method: &str,
        params: &Bound<'_, PyAny>,
        files: Vec<PyFile>,
        call_json: &str,
    ) -> PyResult<Py<PyTuple>> {
        let resource = protocol::resource(method).map_err(plain_err)?;
        let args = call_args(params, files)?;
        let call = CallOptions::from_json(parse_json(call_json, "call options")?).map_err(plain_err)?;
        let inner = &self.inner;
        let caller = caller_runtime()?;
        let created = py.detach(|| caller.block_on(inner.create(resource, args, call))).map_err(call_err)?;
        created_to_py(py, created, Some(caller))
    }

    /// The same as an awaitable.
    fn acreate<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        params: &Bound<'py, PyAny>,
        files: Vec<PyFile>,
        call_json: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let resource = protocol::resource(method).map_err(plain_err)?;
        let args = call_args(params, files)?;
        let call = CallOptions::from_json(parse_json(call_json, "call options")?).map_err(plain_err)?;
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let created = inner.create(resource, args, call).await.map_err(call_err)?;
            Python::attach(|py| created_to_py(py, created, None))
        })
    }

    /// The dry-run plan as JSON text.
    #[pyo3(signature = (method, params_json, metadata_json=None, seed=None))]
    fn route(
        &self,
        method: &str,
        params_json: &str,
        metadata_json: Option<&str>,
        seed: Option<u64>,
    ) -> PyResult<String> {
        let resource = protocol::resource(method).map_err(plain_err)?;
        let metadata = metadata_json.map(|m| parse_json(m, "metadata")).transpose()?;
        let plan = self.inner.route(resource, params_json.to_owned(), metadata, seed).map_err(plain_err)?;
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
        let caller = caller_runtime()?;
        let reply = py.detach(|| caller.block_on(inner.http(method, url, headers, Bytes::from(body))));
        http_reply_to_py(py, reply, Some(caller))
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
            Python::attach(|py| http_reply_to_py(py, reply, None))
        })
    }
}

fn header_map(headers: Vec<(String, String)>) -> PyResult<http::HeaderMap> {
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let value = header_value(&name, &value).map_err(plain_err)?;
        map.append(header_name(&name).map_err(plain_err)?, value);
    }
    Ok(map)
}

/// `caller`: the runtime a sync call ran on, which its stream must be read on.
fn created_to_py(py: Python<'_>, created: Created, caller: Option<Arc<CallerRuntime>>) -> PyResult<Py<PyTuple>> {
    let tuple = match created {
        Created::Reply(reply) => PyTuple::new(
            py,
            [
                "reply".into_pyobject(py)?.into_any(),
                reply.status.into_pyobject(py)?.into_any(),
                reply.content_type.into_pyobject(py)?.into_any(),
                PyBytes::new(py, &reply.body).into_any(),
                Bound::new(py, NativeRoute(reply.route))?.into_any(),
            ],
        )?,
        Created::Stream(events, route) => PyTuple::new(
            py,
            [
                "stream".into_pyobject(py)?.into_any(),
                Bound::new(py, NativeStream { inner: ClosableStream::new(events), route: Some(route), caller })?
                    .into_any(),
            ],
        )?,
    };
    Ok(tuple.unbind())
}

fn http_reply_to_py(py: Python<'_>, reply: HttpReply, caller: Option<Arc<CallerRuntime>>) -> PyResult<Py<PyTuple>> {
    let headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = match reply.body {
        HttpReplyBody::Full(bytes) => PyBytes::new(py, &bytes).into_any(),
        HttpReplyBody::Stream(frames) => {
            Bound::new(py, NativeStream { inner: ClosableStream::new(Box::pin(frames.map(Ok))), route: None, caller })?
                .into_any()
        }
    };
    Ok(PyTuple::new(py, [reply.status.into_pyobject(py)?.into_any(), headers.into_pyobject(py)?.into_any(), body])?
        .unbind())
}

/// A pull-based stream of byte items (chunk JSON, or SSE frames). Closing it returns at
/// once, even while a read is pending, and cancels the upstream request.
#[pyclass(frozen, module = "gatewise._native")]
struct NativeStream {
    inner: Arc<ClosableStream>,
    /// How a `create` stream was routed (usage and cost once it has ended).
    route: Option<RouteInfo>,
    /// The runtime a sync call opened it on; `None` for an async call's.
    caller: Option<Arc<CallerRuntime>>,
}

#[pymethods]
impl NativeStream {
    /// The next item (`bytes`), or `None` at the end.
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        Ok(self.next_item(py)?.map(|b| PyBytes::new(py, &b).unbind()))
    }

    /// The next item read as JSON (what `json.loads` gives), or `None` at the end: a chunk
    /// crosses into Python once, as its value, not as `bytes` to be read by a second call.
    fn next_value<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next_item(py)?.map(|b| from_json::loads(py, &b)).transpose()
    }

    /// `next` as an awaitable.
    fn anext<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let item = inner.next().await.map_err(plain_err)?;
            Python::attach(|py| Ok(item.map(|b| PyBytes::new(py, &b).unbind())))
        })
    }

    /// `next_value` as an awaitable.
    fn anext_value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let item = inner.next().await.map_err(plain_err)?;
            Python::attach(|py| item.map(|b| from_json::loads(py, &b).map(Bound::unbind)).transpose())
        })
    }

    /// Stop reading: returns at once; the upstream request is cancelled.
    fn close(&self) {
        self.inner.close();
        self.settle();
    }

    /// The route as JSON text, with the usage and cost of a stream that has ended.
    fn route_json(&self) -> Option<String> {
        self.route.as_ref().map(route_json_text)
    }
}

/// How a complete answer was routed, rendered as JSON text only when asked for: most
/// callers never read `route`, and writing it on every call cost more than the rest of
/// the binding's own work.
#[pyclass(frozen, module = "gatewise._native")]
struct NativeRoute(RouteInfo);

#[pymethods]
impl NativeRoute {
    /// The route as JSON text.
    fn json(&self) -> String {
        route_json_text(&self.0)
    }
}

impl NativeStream {
    /// The next item, or `None` at the end. An item already read from the upstream is
    /// taken with the GIL held (most chunks of a fast stream: releasing and taking back the
    /// GIL would cost more than the chunk); else it blocks with the GIL released.
    fn next_item(&self, py: Python<'_>) -> PyResult<Option<Bytes>> {
        let runtime: &tokio::runtime::Runtime = match &self.caller {
            Some(caller) => caller,
            None => runtime(),
        };
        let ready = {
            let _context = runtime.enter();
            futures::FutureExt::now_or_never(self.inner.next())
        };
        match ready {
            Some(item) => item,
            None => {
                let inner = self.inner.clone();
                py.detach(|| runtime.block_on(inner.next()))
            }
        }
        .map_err(plain_err)
    }

    /// Let a sync call's runtime run what a close or a drop woke. A current-thread runtime
    /// runs only inside `block_on`, and the upstream connection's task must run to see its
    /// answer dropped and close the socket (which is what cancels the upstream request);
    /// else that waits for the thread's next call. Skipped inside a runtime (a log
    /// callback's garbage collection, say), where blocking is not allowed.
    fn settle(&self) {
        if let Some(caller) = &self.caller
            && tokio::runtime::Handle::try_current().is_err()
        {
            caller.block_on(async {
                for _ in 0..2 {
                    tokio::task::yield_now().await;
                }
            });
        }
    }
}

impl Drop for NativeStream {
    fn drop(&mut self) {
        self.inner.close();
        self.settle();
    }
}

/// A Python callable that gets every request's record (as JSON text). Its exceptions are
/// reported as unraisable: a log callback must never fail a request.
struct LogCallback(Py<PyAny>);

impl std::fmt::Debug for LogCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogCallback")
    }
}

impl RequestObserver for LogCallback {
    fn record(&self, record: &RequestRecord) {
        let line = record.to_json_line();
        Python::attach(|py| {
            if let Err(e) = self.0.call1(py, (line,)) {
                e.write_unraisable(py, Some(self.0.bind(py)));
            }
        });
    }
}

/// The Python value of a JSON answer or stream chunk, as `json.loads` gives it.
#[pyfunction]
fn loads<'py>(py: Python<'py>, text: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    from_json::loads(py, text)
}

/// The module: the classes, the exception hierarchy, and the vocabulary the Python half
/// builds its surface from (`OPTIONS`, `RESOURCES`, `ERROR_CLASSES`).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(loads, m)?)?;
    m.add_class::<NativeGateway>()?;
    m.add_class::<NativeStream>()?;
    m.add_class::<NativeRoute>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("GatewayError", py.get_type::<exceptions::GatewayError>())?;
    for class in ErrorClass::ALL {
        m.add(class.name(), exception_type(py, class))?;
    }
    let classes: Vec<(&str, &str)> =
        ErrorClass::ALL.iter().map(|c| (c.name(), c.parent().map_or("GatewayError", ErrorClass::name))).collect();
    m.add("ERROR_CLASSES", classes)?;
    let options: Vec<(&str, &str, Option<&str>, &str)> =
        OPTIONS.iter().map(|o| (o.name, o.python_type, o.header, o.doc)).collect();
    m.add("OPTIONS", options)?;
    let resources: Vec<(&str, &str)> = RESOURCES.iter().map(|r| (r.method, r.body.as_str())).collect();
    m.add("RESOURCES", resources)?;
    Ok(())
}
