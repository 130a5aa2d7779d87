//! Build script: brings the GraphiQL browser files into `$OUT_DIR/web/node_modules`, where
//! `src/http/graphiql.rs` embeds them with `include_bytes!`.
//!
//! The files come from the npm packages pinned by `web/package-lock.json`, installed with
//! `npm ci` into `$OUT_DIR/web` (and kept there while `web/package.json` and the lockfile
//! stay the same, so rebuilds do not reinstall). For builds without network access, set
//! `CASEFILE_WEB_NODE_MODULES` to a `node_modules` folder installed from that lockfile
//! (`npm ci --ignore-scripts` in `web/`): the files are then copied from there.
//!
//! Without npm (none on `PATH`, or `CASEFILE_NPM` naming a command that does not exist,
//! such as `CASEFILE_NPM=none`) casefile still builds: GraphiQL is left out, a warning
//! says so, the cfg `casefile_no_graphiql` is set, and `GET /` answers a page that says
//! how to get GraphiQL. `CASEFILE_NPM` otherwise names the npm command to run.

use std::env;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files under `node_modules` that `src/http/graphiql.rs` embeds (keep both in step).
const EMBEDDED: &[&str] = &[
    "react/umd/react.production.min.js",
    "react-dom/umd/react-dom.production.min.js",
    "graphql-ws/umd/graphql-ws.min.js",
    "graphiql/graphiql.min.js",
    "graphiql/graphiql.min.css",
];

const OVERRIDE_VAR: &str = "CASEFILE_WEB_NODE_MODULES";
const NPM_VAR: &str = "CASEFILE_NPM";
/// Set when GraphiQL is left out of this build.
const NO_GRAPHIQL_CFG: &str = "casefile_no_graphiql";
const NO_NPM: &str = "casefile embeds GraphiQL from npm at build time: install Node.js/npm or set CASEFILE_WEB_NODE_MODULES";
/// Written after a successful `npm ci`: the hash of the manifest and lockfile it installed.
const STAMP: &str = ".casefile-npm-ci";

fn main() {
    if let Err(message) = run() {
        let mut lines = message.lines();
        if let Some(first) = lines.next() {
            println!("cargo::error={first}");
        }
        for line in lines {
            eprintln!("{line}");
        }
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=web/package.json");
    println!("cargo::rerun-if-changed=web/package-lock.json");
    println!("cargo::rerun-if-env-changed={OVERRIDE_VAR}");
    println!("cargo::rerun-if-env-changed={NPM_VAR}");
    println!("cargo::rustc-check-cfg=cfg({NO_GRAPHIQL_CFG})");

    let manifest_dir = dir_from_env("CARGO_MANIFEST_DIR")?;
    let web = dir_from_env("OUT_DIR")?.join("web");
    let node_modules = web.join("node_modules");
    let stamp = web.join(STAMP);

    if let Some(source) = env::var_os(OVERRIDE_VAR).filter(|value| !value.is_empty()) {
        let source = PathBuf::from(source);
        for file in EMBEDDED {
            println!("cargo::rerun-if-changed={}", source.join(file).display());
        }
        // What is copied now is not what the stamp describes any more.
        remove_if_present(&stamp)?;
        for file in EMBEDDED {
            let from = source.join(file);
            if !from.is_file() {
                return Err(format!(
                    "{OVERRIDE_VAR}={} has no {file}: install it with `npm ci --ignore-scripts` in web/ and point {OVERRIDE_VAR} at the node_modules folder",
                    source.display()
                ));
            }
            let to = node_modules.join(file);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| io_error("create", parent, &e))?;
            }
            fs::copy(&from, &to).map_err(|e| io_error("copy", &from, &e))?;
        }
        return Ok(());
    }

    let manifest = read(&manifest_dir.join("web/package.json"))?;
    let lockfile = read(&manifest_dir.join("web/package-lock.json"))?;
    let wanted = format!("{:016x}", fnv1a(&[&manifest, b"\0", &lockfile]));

    let npm_named = env::var(NPM_VAR).ok().filter(|value| !value.is_empty());
    let npm = npm_named.clone().unwrap_or_else(|| default_npm().to_owned());
    // An npm named on purpose is always asked, so `CASEFILE_NPM=none` builds without
    // GraphiQL even where an earlier build installed it.
    let installed = fs::read_to_string(&stamp).is_ok_and(|found| found.trim() == wanted)
        && EMBEDDED.iter().all(|file| node_modules.join(file).is_file());
    if installed && npm_named.is_none() {
        return Ok(());
    }
    if !runs(&npm) {
        println!(
            "cargo::warning=npm (`{npm}`) was not found: this build of casefile leaves GraphiQL out \
             (`GET /` says how to get it). Install Node.js and npm and build again to embed it."
        );
        println!("cargo::rustc-cfg={NO_GRAPHIQL_CFG}");
        // Look again when PATH changes (after installing npm elsewhere, say); an npm
        // installed on the same PATH needs `cargo clean -p casefile`.
        println!("cargo::rerun-if-env-changed=PATH");
        return Ok(());
    }
    if installed {
        return Ok(());
    }

    fs::create_dir_all(&web).map_err(|e| io_error("create", &web, &e))?;
    remove_if_present(&stamp)?;
    write(&web.join("package.json"), &manifest)?;
    write(&web.join("package-lock.json"), &lockfile)?;

    let output = Command::new(&npm)
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&web)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => NO_NPM.to_owned(),
            _ => format!("{NO_NPM} (running npm failed: {e})"),
        })?;
    if !output.status.success() {
        let log = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`npm ci` for the embedded GraphiQL assets failed in {} ({}); without network access set {OVERRIDE_VAR} to an installed node_modules folder\n{}",
            web.display(),
            output.status,
            tail.join("\n")
        ));
    }
    if let Some(missing) = EMBEDDED.iter().find(|file| !node_modules.join(file).is_file()) {
        return Err(format!(
            "`npm ci` in {} did not install node_modules/{missing}: web/package-lock.json pins a package version that no longer ships it",
            web.display()
        ));
    }
    write(&stamp, wanted.as_bytes())
}

fn default_npm() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

/// Whether `npm --version` runs at all (a missing command is the only "no").
fn runs(npm: &str) -> bool {
    let started = Command::new(npm)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    !matches!(started, Err(e) if e.kind() == ErrorKind::NotFound)
}

fn dir_from_env(name: &str) -> Result<PathBuf, String> {
    env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{name} is not set: build casefile with cargo"))
}

/// 64-bit FNV-1a: only compares a lockfile with the one installed before, no security role.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| io_error("read", path, &e))
}

fn write(path: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| io_error("write", path, &e))
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error("remove", path, &e)),
        _ => Ok(()),
    }
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> String {
    format!("could not {action} {}: {error}", path.display())
}
