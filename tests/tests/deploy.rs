//! The deployment files (Dockerfile, deploy/compose.yaml, deploy/kubernetes/,
//! deploy/registry.example.yaml), checked without Docker or a cluster: the image is built
//! in one stage and runs as a non-root user in another, every flag they give
//! `gatewise serve` is one it has, and the example registry is valid and lets the server
//! start on 0.0.0.0 (it has gateway keys).
//!
//! `gatewise serve`'s flags are read from the CLI's definition, the one its `--help`
//! prints: this crate cannot run the binary of another package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use gateway_core::error::ConfigErrors;
use gateway_core::registry::Registry;
use gateway_http::cli::Cli;
use serde_json::Value;

/// The example gateway key whose hash is in deploy/registry.example.yaml.
const EXAMPLE_KEY: &str = "gw-example-team-a-CHANGE-ME";

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents of a YAML file (a Kubernetes file holds several, between `---` lines).
fn yaml_documents(rel: &str) -> Vec<Value> {
    let text = read(rel);
    let mut documents = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(["---"]) {
        if line.trim_end() != "---" {
            current.push_str(line);
            current.push('\n');
            continue;
        }
        let has_content = current.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if has_content {
            documents.push(serde_norway::from_str(&current).unwrap_or_else(|e| panic!("{rel}: {e}")));
        }
        current.clear();
    }
    documents
}

/// The Dockerfile's instructions, in order, as (INSTRUCTION, the rest): continuation
/// lines joined, comments left out.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut line = String::new();
    for raw in read("Dockerfile").lines().map(str::trim) {
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(part) = raw.strip_suffix('\\') {
            line.push_str(part);
            line.push(' ');
            continue;
        }
        line.push_str(raw);
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line.as_str(), ""));
        instructions.push((word.to_ascii_uppercase(), rest.trim().to_owned()));
        line.clear();
    }
    instructions
}

/// The instructions of the Dockerfile's last stage: the image that runs.
fn final_stage() -> Vec<(String, String)> {
    let instructions = dockerfile();
    let last_from = instructions.iter().rposition(|(i, _)| i == "FROM").expect("a FROM in the Dockerfile");
    instructions[last_from..].to_vec()
}

/// A JSON-array (exec form) argument of the final stage's `instruction`.
fn exec_form(instruction: &str) -> Vec<String> {
    let stage = final_stage();
    let (_, rest) = stage.iter().rev().find(|(i, _)| i == instruction).unwrap_or_else(|| panic!("no {instruction}"));
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("{instruction} {rest} is not in exec form: {e}"))
}

/// Every long flag `gatewise serve` has.
fn serve_flags() -> Vec<String> {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("a serve subcommand");
    serve.get_arguments().filter_map(|a| a.get_long()).map(|long| format!("--{long}")).collect()
}

fn strings(args: &Value) -> Vec<String> {
    let args = args.as_array().unwrap_or_else(|| panic!("not a list: {args}"));
    args.iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

/// Whether an image name is the gatewise image (`gatewise`, `gatewise:tag`,
/// `registry.example/team/gatewise:tag`).
fn is_gatewise(image: &str) -> bool {
    let name = image.rsplit('/').next().unwrap();
    name == "gatewise" || name.starts_with("gatewise:")
}

/// Every command line the deployment files give the gatewise image, after its
/// ENTRYPOINT, each with where it comes from.
fn gatewise_command_lines() -> Vec<(String, Vec<String>)> {
    let mut lines = vec![("Dockerfile CMD".to_owned(), exec_form("CMD"))];
    let compose = yaml_documents("deploy/compose.yaml").remove(0);
    for (name, service) in compose["services"].as_object().expect("compose services") {
        if service["image"].as_str().is_some_and(is_gatewise) {
            lines.push((format!("deploy/compose.yaml service {name}"), strings(&service["command"])));
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    for file in files {
        let rel = file.strip_prefix(repo()).unwrap().to_string_lossy().into_owned();
        for document in yaml_documents(&rel) {
            let containers = document["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
            for container in containers.iter().filter(|c| c["image"].as_str().is_some_and(is_gatewise)) {
                let at = format!("{rel} {} container {}", document["metadata"]["name"], container["name"]);
                lines.push((at, strings(&container["args"])));
            }
        }
    }
    lines
}

#[test]
fn dockerfile_builds_in_one_stage_and_runs_as_a_non_root_user_in_another() {
    let stages = dockerfile().iter().filter(|(i, _)| i == "FROM").count();
    assert!(stages >= 2, "the Dockerfile has {stages} stage(s): the toolchain would ship in the image");
    let stage = final_stage();
    let (_, user) = stage.iter().rev().find(|(i, _)| i == "USER").expect("a USER in the final stage");
    let name = user.split(':').next().unwrap();
    assert!(!["root", "0"].contains(&name), "the final stage runs as {user}");
    // Kubernetes' runAsNonRoot can only check a numeric user.
    assert!(name.parse::<u32>().is_ok(), "USER {user} is not numeric");
    assert_eq!(exec_form("ENTRYPOINT"), ["gatewise"]);
}

#[test]
fn deploy_files_give_gatewise_serve_only_flags_it_has() {
    let known = serve_flags();
    assert!(known.contains(&"--host".to_owned()), "{known:?}");
    let lines = gatewise_command_lines();
    assert!(lines.len() >= 3, "the Dockerfile, compose and Kubernetes each run gatewise: {lines:?}");
    for (at, args) in &lines {
        assert_eq!(args.first().map(String::as_str), Some("serve"), "{at}: {args:?}");
        for arg in args.iter().filter(|a| a.starts_with("--")) {
            let flag = arg.split('=').next().unwrap();
            assert!(known.iter().any(|k| k == flag), "{at}: `gatewise serve` has no {flag}; it has {known:?}");
        }
        let host = args.iter().position(|a| a == "--host").and_then(|i| args.get(i + 1)).map(String::as_str);
        assert_eq!(host, Some("0.0.0.0"), "{at}: inside a container, bind every interface");
    }
    // The replicas of compose and Kubernetes share one Redis.
    for (at, args) in lines.iter().filter(|(at, _)| at.starts_with("deploy/")) {
        assert!(args.iter().any(|a| a == "--redis" || a.starts_with("--redis=")), "{at}: no --redis: {args:?}");
        assert!(args.iter().any(|a| a == "--registry" || a.starts_with("--registry=")), "{at}: no --registry");
    }
}

#[test]
fn example_registry_is_valid_and_has_gateway_keys() {
    let rel = "deploy/registry.example.yaml";
    let mut value = gateway_http::registry::parse(&repo().join(rel), &read(rel)).unwrap_or_else(|e| panic!("{e}"));
    // As `gatewise validate` and `serve` do, with only the variable compose and the
    // Kubernetes Secret provide.
    let env = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-test".to_owned());
    let missing = gateway_core::interpolate::interpolate(&mut value, &env);
    assert!(missing.is_empty(), "{rel}: {}", ConfigErrors(missing));
    let registry = Registry::load(&value).unwrap_or_else(|e| panic!("{rel}: {e}"));
    // Provider credentials on a non-loopback bind: serve refuses to start without keys.
    assert!(registry.holds_credentials());
    assert!(registry.has_keys(), "{rel}: without gateway keys, `serve --host 0.0.0.0` refuses to start");
    assert!(registry.key(EXAMPLE_KEY).is_some(), "{rel}: the hash is not that of the key its comment names");
}

#[test]
fn kubernetes_registry_is_the_example_registry() {
    let documents = yaml_documents("deploy/kubernetes/registry-configmap.yaml");
    let configmap = documents.iter().find(|d| d["kind"] == "ConfigMap").expect("a ConfigMap");
    assert_eq!(
        configmap["data"]["registry.yaml"].as_str(),
        Some(read("deploy/registry.example.yaml").as_str()),
        "deploy/kubernetes/registry-configmap.yaml and deploy/registry.example.yaml differ"
    );
}
