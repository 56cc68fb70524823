//! Builds the analysts' playground (`../playground`, a Vite app) and embeds it
//! in the binary, so `mlgate` serves it itself, with no CDN and offline.
//!
//! With npm on the PATH, the playground's dependencies are installed from its
//! lockfile (`npm ci`, only when the lockfile changed) and the app is built
//! into `playground/dist/<hash of its sources>/`, reused while the sources
//! stay the same (`cargo check` and `cargo build` share it). Without npm, or
//! with `MLGATE_PLAYGROUND_BUILD=0`, nothing is embedded and the server
//! serves `playground/fallback.html`, a dependency-free page that says how
//! to get the full one.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the build depends on, relative to the playground folder.
const INPUTS: [&str; 6] = [
    "package.json",
    "package-lock.json",
    "index.html",
    "vite.config.js",
    "src",
    "queries",
];

fn main() {
    let playground = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("..")
        .join("playground");
    for input in INPUTS {
        println!(
            "cargo:rerun-if-changed={}",
            playground.join(input).display()
        );
    }
    println!("cargo:rerun-if-env-changed=MLGATE_PLAYGROUND_BUILD");

    let built = match build(&playground) {
        Ok(dir) => Some(dir),
        Err(why) => {
            println!("cargo:warning=the playground was not built ({why}); mlgate will serve its fallback page at / (see playground/README.md)");
            None
        }
    };
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("playground_files.rs");
    fs::write(&out, embedding(built.as_deref())).expect("write the playground's file table");
}

/// Builds the app (or finds it built) and returns its folder.
fn build(playground: &Path) -> Result<PathBuf, String> {
    if std::env::var("MLGATE_PLAYGROUND_BUILD").is_ok_and(|v| v == "0") {
        return Err("MLGATE_PLAYGROUND_BUILD=0".into());
    }
    let hash = inputs_hash(playground)?;
    let dist = playground.join("dist");
    let target = dist.join(format!("{hash:016x}"));
    if target.join("index.html").exists() {
        return Ok(target);
    }
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|o| o.status.success()) {
        return Err("npm was not found".into());
    }
    fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    // One build at a time (cargo check and cargo build may run together).
    let lock = fs::File::create(dist.join(".lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if target.join("index.html").exists() {
        return Ok(target);
    }

    let installed = playground
        .join("node_modules")
        .join(".mlgate-lockfile-hash");
    let lockfile_hash = format!(
        "{:016x}",
        fnv1a(&fs::read(playground.join("package-lock.json")).map_err(|e| e.to_string())?)
    );
    if fs::read_to_string(&installed).ok().as_deref() != Some(&lockfile_hash) {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(playground),
            "npm ci",
        )?;
        fs::write(&installed, &lockfile_hash).map_err(|e| e.to_string())?;
    }
    let staging = dist.join(format!("{hash:016x}.tmp"));
    run(
        Command::new("npm")
            .args(["run", "build", "--", "--outDir"])
            .arg(&staging)
            .arg("--emptyOutDir")
            .current_dir(playground),
        "vite build",
    )?;
    fs::rename(&staging, &target).map_err(|e| e.to_string())?;
    // Earlier builds are no longer referenced.
    for entry in fs::read_dir(&dist).map_err(|e| e.to_string())?.flatten() {
        let path = entry.path();
        if path.is_dir() && path != target {
            let _ = fs::remove_dir_all(path);
        }
    }
    Ok(target)
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{what} did not start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!("{what} failed: {last}"))
}

/// FNV-1a: stable across toolchains, unlike the standard library's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A hash of every input file's path and contents.
fn inputs_hash(playground: &Path) -> Result<u64, String> {
    let mut files = Vec::new();
    for input in INPUTS {
        collect(&playground.join(input), &mut files)?;
    }
    files.sort();
    let mut all = Vec::new();
    for file in files {
        let relative = file.strip_prefix(playground).unwrap_or(&file);
        all.extend_from_slice(relative.to_string_lossy().as_bytes());
        all.push(0);
        all.extend(fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?);
        all.push(0);
    }
    Ok(fnv1a(&all))
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| e.to_string())? {
            collect(&entry.map_err(|e| e.to_string())?.path(), files)?;
        }
    } else if path.exists() {
        files.push(path.to_owned());
    }
    Ok(())
}

/// The Rust source of the file table: each built file's path (relative to
/// the app's root) and its bytes.
fn embedding(built: Option<&Path>) -> String {
    let mut files = Vec::new();
    if let Some(dir) = built {
        collect(dir, &mut files).expect("list the built playground");
        files.sort();
    }
    let mut out = String::from(
        "/// The built playground's files by path (`index.html`, `assets/…`); empty when it was not built.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for file in &files {
        let relative = file
            .strip_prefix(built.expect("files come from the built folder"))
            .expect("inside the built folder")
            .to_string_lossy()
            .replace('\\', "/");
        let _ = writeln!(
            out,
            "    ({relative:?}, include_bytes!({:?})),",
            file.display().to_string()
        );
    }
    out.push_str("];\n");
    out
}
