//! The `gatewise` command line: `serve`, `route`, `validate`, `schema`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use gateway_core::config::{CONFIG_SCHEMA, Config};
use gateway_core::engine::Limits;
use gateway_core::rng::SplitMix64;
use gateway_core::{Endpoint, GatewayRequest, RequestBody, RequestOptions};
use serde_json::Value;

use crate::egress::{AllowedHost, EgressPolicy};
use crate::error::HttpError;
use crate::protocol::{ConfigNames, ConfigStore, Resolver};
use crate::server::{AppState, DEFAULT_BODY_LIMIT};
use crate::telemetry::{LogFormat, Metrics, RequestLog, Telemetry, Traces};
use crate::transport::{HyperTransport, TransportOptions};

/// Gatewise: an embeddable, Portkey-compatible AI gateway.
#[derive(Debug, Parser)]
#[command(name = "gatewise", version, about = "Gatewise: an embeddable, Portkey-compatible AI gateway.")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the OpenAI-compatible gateway server.
    Serve(ServeArgs),
    /// Dry run: print the plan for a request (targets in order, the upstream URL and the
    /// translated body each would receive) without sending anything.
    Route(RouteArgs),
    /// Check a config or registry file; exit 1 listing every error with its JSON path.
    Validate {
        /// The config file, or a registry (an object with `providers`, `configs` or `keys`).
        file: PathBuf,
    },
    /// Print the config JSON Schema (or, with --registry, the registry's).
    Schema {
        /// Print the registry's schema.
        #[arg(long)]
        registry: bool,
    },
    /// Gateway keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `gatewise keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a fresh gateway key: prints the key once, and the registry entry (its hash).
    New {
        /// The key's name in the registry.
        #[arg(long)]
        name: String,
    },
}

/// `gatewise serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", env = "GATEWISE_HOST")]
    pub host: IpAddr,
    /// Port to bind.
    #[arg(long, default_value_t = 8787, env = "GATEWISE_PORT")]
    pub port: u16,
    /// Default config for requests that carry none.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory of named configs: `x-portkey-config: NAME` loads DIR/NAME.json.
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
    /// The registry (JSON or YAML): provider entries (`@slug`, virtual keys), configs by
    /// id and gateway keys. Re-read when it changes.
    #[arg(long, env = "GATEWISE_REGISTRY")]
    pub registry: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, default_value = "info", env = "GATEWISE_LOG")]
    pub log_level: String,
    /// Largest request body accepted, in bytes (larger gets 413).
    #[arg(long, default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// On a non-loopback bind, allow upstream calls to this private host, on any port or
    /// only on the one given (`vllm.internal:8000`, `[fd00::5]:9000`); repeatable.
    #[arg(long = "allow-host", value_parser = AllowedHost::parse)]
    pub allow_hosts: Vec<AllowedHost>,
    /// Connect timeout for upstream calls, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    /// Longest silence allowed between two chunks of an upstream answer, seconds.
    #[arg(long, default_value_t = 120)]
    pub idle_timeout_s: u64,
    /// Longest wait for a request's headers, seconds, idle keep-alive time included
    /// (0: no limit). Behind a load balancer, set it above the balancer's idle timeout.
    #[arg(long, default_value_t = 30)]
    pub header_read_timeout_s: u64,
    /// Most upstream attempts one request may make, retries and fallbacks together.
    #[arg(long, default_value_t = Limits::default().max_attempts)]
    pub max_attempts: usize,
    /// Longest a request may take until its answer starts, seconds (retries, fallbacks and
    /// waits included; a started stream is bounded by --idle-timeout-s instead).
    #[arg(long, default_value_t = Limits::default().deadline.as_secs())]
    pub deadline_s: u64,
    /// Longest an attempt waits for the upstream's answer when the request sets no
    /// request_timeout, seconds.
    #[arg(long, default_value_t = Limits::default().attempt_timeout.as_secs())]
    pub attempt_timeout_s: u64,
    /// Largest non-streamed upstream answer, bytes (larger gets 502 upstream_response_too_large).
    #[arg(long, default_value_t = Limits::default().max_response_bytes)]
    pub max_response_bytes: usize,
    /// Most connections served at once (default: sized to the file-descriptor limit, which
    /// is raised to its hard limit at start). Past it, `/health` still answers and every
    /// other request gets 503 server_busy with Retry-After.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Serve on a non-loopback address with provider credentials and no gateway keys, so
    /// that anyone who can reach the server can spend them.
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// The request log on stdout, one line per request: `json` (the default when stdout
    /// is not a terminal), `text` (the default on a terminal) or `none`.
    #[arg(long, value_enum, env = "GATEWISE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Put request and response bodies in the request log (they may hold personal data).
    #[arg(long)]
    pub log_bodies: bool,
    /// Serve no `GET /metrics` and keep no metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// A request metadata key whose values become a metrics label (`metadata_<key>`, at
    /// most 64 values each; later ones count as `other`); repeatable.
    #[arg(long = "metrics-label")]
    pub metrics_labels: Vec<String>,
    /// Export OpenTelemetry spans over OTLP/HTTP to this collector (`http://host:4318`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Share rate limits, budgets, the response cache and provider circuit state with every
    /// replica through this Redis or Valkey (`redis://[user:password@]host:6379/0`,
    /// `rediss://` for TLS). Without it, they are this process's own.
    #[arg(long, env = "GATEWISE_REDIS_URL")]
    pub redis: Option<String>,
    /// What rate limits and budgets do while Redis cannot be reached: `allow` requests
    /// uncounted (logged loudly) or `refuse` them (503 limits_unavailable).
    #[arg(long, value_enum, default_value_t = RedisDown::Allow, env = "GATEWISE_REDIS_DOWN")]
    pub redis_down: RedisDown,
    /// Worker threads (default: one per core). Each serves its share of the connections
    /// on a single-threaded runtime with its own upstream connection pool.
    #[arg(long, env = "GATEWISE_WORKERS")]
    pub workers: Option<usize>,
}

/// `--redis-down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisDown {
    /// Let requests through uncounted.
    Allow,
    /// Refuse them.
    Refuse,
}

impl From<RedisDown> for gateway_core::engine::WhenStateDown {
    fn from(rule: RedisDown) -> Self {
        match rule {
            RedisDown::Allow => Self::Allow,
            RedisDown::Refuse => Self::Refuse,
        }
    }
}

/// `gatewise route`.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// The config file.
    #[arg(long)]
    pub config: PathBuf,
    /// The OpenAI-shaped request body (JSON file).
    #[arg(long)]
    pub request: PathBuf,
    /// Request metadata (JSON object), as `x-portkey-metadata`.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Seed for loadbalance draws.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The gateway path the request is for.
    #[arg(long, default_value = "/v1/chat/completions")]
    pub path: String,
    /// A registry whose entries the config may name (`virtual_key`, `@slug`).
    #[arg(long)]
    pub registry: Option<PathBuf>,
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, HttpError> {
    match cli.command {
        Command::Serve(args) => serve(args).map(|()| 0),
        Command::Route(args) => route(&args),
        Command::Validate { file } => Ok(validate(&file)),
        Command::Schema { registry } => {
            println!("{}", if registry { gateway_core::registry::REGISTRY_SCHEMA } else { CONFIG_SCHEMA });
            Ok(0)
        }
        Command::Keys(KeysCommand::New { name }) => {
            let key = new_key()?;
            let entry = serde_json::json!({ name: {"hash": gateway_core::registry::key_hash(&key)} });
            println!("key (shown once): {key}");
            println!("registry \"keys\" entry: {entry}");
            Ok(0)
        }
    }
}

fn read_json(path: &Path) -> Result<Value, HttpError> {
    let err = |message: String| HttpError::Config { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    crate::registry::parse(path, &text).map_err(err)
}

/// An operator's file with its `${VAR}`s filled from the environment.
fn read_operator_file(path: &Path) -> Result<Value, HttpError> {
    let mut value = read_json(path)?;
    let errors = gateway_core::interpolate::interpolate(&mut value, &|name| std::env::var(name).ok());
    if !errors.is_empty() {
        let message = gateway_core::error::ConfigErrors(errors).to_string();
        return Err(HttpError::Config { path: path.display().to_string(), message });
    }
    Ok(value)
}

/// Whether a file is a registry rather than a config.
fn is_registry(value: &Value) -> bool {
    ["providers", "configs", "keys"].iter().any(|k| value.get(k).is_some())
}

fn serve(args: ServeArgs) -> Result<(), HttpError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // stdout is the request log's: everything else the server says goes to stderr.
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
    let registry = match &args.registry {
        Some(path) => crate::registry::RegistrySource::open(path)
            .map_err(|e| HttpError::Config { path: path.display().to_string(), message: e.to_string() })?,
        None => crate::registry::RegistrySource::none(),
    };
    let default = args.config.as_deref().map(read_operator_file).transpose()?;
    let names = args.config_dir.clone().map_or(ConfigNames::None, ConfigNames::Dir);
    let store = ConfigStore::with_registry(default, names, Arc::new(registry));
    let holds_credentials =
        store.registry().registry.holds_credentials() || store.default_holds_credentials() || args.config_dir.is_some();
    if !args.host.is_loopback()
        && holds_credentials
        && !store.registry().registry.has_keys()
        && !args.allow_unauthenticated
    {
        return Err(HttpError::Config {
            path: args.registry.as_ref().or(args.config.as_ref()).map(|p| p.display().to_string()).unwrap_or_default(),
            message: format!(
                "refusing to serve on {} with provider credentials and no gateway keys: anyone who reaches it \
                 could spend them. Add keys to the registry (gatewise keys new), bind to 127.0.0.1, or pass \
                 --allow-unauthenticated",
                args.host
            ),
        });
    }
    // Refuse to start with a broken default config rather than fail every request.
    // Leaves may leave the provider to the request (`x-portkey-provider`).
    if let Some(errors) = store.default_errors(true) {
        let path = args.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        return Err(HttpError::Config { path, message: errors.to_string() });
    }
    let egress = if args.host.is_loopback() {
        EgressPolicy::permissive()
    } else {
        EgressPolicy::public_only(args.allow_hosts.clone())
    };
    let transport = HyperTransport::new(TransportOptions {
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        idle_timeout: Duration::from_secs(args.idle_timeout_s),
        egress,
        ..TransportOptions::default()
    })?;
    let mut engine = gateway_core::Engine::new(Arc::new(transport.clone())).with_limits(Limits {
        max_attempts: args.max_attempts,
        deadline: Duration::from_secs(args.deadline_s),
        attempt_timeout: Duration::from_secs(args.attempt_timeout_s),
        max_response_bytes: args.max_response_bytes,
    });
    if let Some(url) = &args.redis {
        let redis = crate::redis_state::RedisState::open(url)?;
        engine = engine.with_state(redis.clone(), args.redis_down.into()).with_cache(redis);
        tracing::info!("limits, budgets, the response cache and circuits are shared through Redis");
    }
    let telemetry = telemetry(&args)?;
    let resolver = Resolver::server(store);
    let mut shared = AppState::new(engine, resolver, args.body_limit).with_telemetry(telemetry.clone());
    shared.header_read_timeout =
        (args.header_read_timeout_s > 0).then(|| Duration::from_secs(args.header_read_timeout_s));
    if let Some(max) = args.max_connections.filter(|m| *m > 0) {
        shared.connections = crate::server::ConnectionGate::new(max);
    }
    let workers = args
        .workers
        .filter(|w| *w > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
    let states = shared.per_worker(workers);
    let listener = std::net::TcpListener::bind(SocketAddr::new(args.host, args.port))?;
    tracing::info!(
        "gatewise listening on http://{} with {workers} worker threads, at most {} connections",
        listener.local_addr()?,
        shared.connections.max()
    );
    let served = crate::server::serve_on_threads(listener, states, crate::server::shutdown_signal());
    telemetry.shutdown();
    served
}

/// The request log, metrics and trace export `serve` was asked for.
fn telemetry(args: &ServeArgs) -> Result<Telemetry, HttpError> {
    let format = args.log_format.unwrap_or_else(LogFormat::default_for_stdout);
    let log = match format {
        LogFormat::None => None,
        format => Some(RequestLog::stdout(format, args.log_bodies)?),
    };
    let metrics = (!args.no_metrics).then(|| Arc::new(Metrics::new(&args.metrics_labels)));
    let traces = match args.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) {
        Some(endpoint) => Some(Arc::new(
            Traces::otlp(endpoint).map_err(|message| HttpError::Config { path: "--otlp-endpoint".into(), message })?,
        )),
        None => None,
    };
    Ok(Telemetry { log, metrics, traces })
}

/// 32 random bytes from the OS, as `gw-` and hex.
fn new_key() -> Result<String, HttpError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| HttpError::Config { path: String::new(), message: "no randomness from the OS".into() })?;
    Ok(format!("gw-{}", hex::encode(bytes)))
}

fn route(args: &RouteArgs) -> Result<i32, HttpError> {
    let registry = match &args.registry {
        Some(path) => match crate::registry::read(path) {
            Ok((registry, _)) => registry,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return Ok(1);
            }
        },
        None => gateway_core::registry::Registry::default(),
    };
    let loaded = Config::load_with(&read_operator_file(&args.config)?, registry.names())
        .map_err(|invalid| invalid.reported(false))
        .and_then(|c| c.require_providers().map(|()| c).map_err(|e| gateway_core::error::ConfigErrors(vec![e])));
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return Ok(1);
        }
    };
    let body = read_json(&args.request)?;
    let method = if args.path == "/v1/models" { http::Method::GET } else { http::Method::POST };
    let Some(endpoint) = Endpoint::from_path(&method, &args.path) else {
        eprintln!("unknown gateway path {}", args.path);
        return Ok(1);
    };
    let metadata = match &args.metadata {
        Some(m) => match serde_json::from_str::<Value>(m) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                eprintln!("--metadata must be a JSON object");
                return Ok(1);
            }
        },
        None => Value::Object(Default::default()),
    };
    let request = match RequestBody::json(Bytes::from(body.to_string())) {
        Ok(body) => GatewayRequest { path: args.path.clone(), ..GatewayRequest::json(endpoint, body) },
        Err(e) => {
            eprintln!("{}: {e}", args.request.display());
            return Ok(1);
        }
    };
    let options = RequestOptions { metadata: Arc::new(metadata), ..RequestOptions::default() };
    let rng = args.seed.map(SplitMix64::new).unwrap_or_else(SplitMix64::from_entropy);
    match gateway_core::engine::dry_run(&config, &request, &options, &rng, SystemTime::now()) {
        Ok(plan) => {
            let out = serde_json::json!({"targets": plan});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(0)
        }
        Err(e) => {
            println!("{}", serde_json::to_string_pretty(&e.to_openai_json()).unwrap_or_default());
            Ok(1)
        }
    }
}

fn validate(file: &Path) -> i32 {
    let value = match read_json(file) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let checked = if is_registry(&value) {
        crate::registry::load(value).map(|_| ())
    } else {
        Config::from_json(&value).map(|_| ())
    };
    match checked {
        Ok(()) => {
            println!("{}: valid", file.display());
            0
        }
        Err(errors) => {
            for e in &errors.0 {
                let path = e.param.as_deref().filter(|p| !p.is_empty()).unwrap_or("(root)");
                eprintln!("{}: {path}: {}", file.display(), e.message);
            }
            1
        }
    }
}
