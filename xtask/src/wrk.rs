//! wrk, the benches' load generator: the Lua script of a run, one bounded run, and the
//! `WRKRESULT` line the script prints at its end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::procs;

/// A wrk script sending `method` with a JSON `body` (none when empty) that prints one
/// `WRKRESULT` line: requests, duration, p50/p99 and the error counts.
pub fn script(method: &str, body: &str) -> String {
    let mut lua = format!("wrk.method = \"{method}\"\n");
    if !body.is_empty() {
        // A Lua long string: the body goes in as it is, quotes and all.
        lua.push_str(&format!("wrk.body = [[{body}]]\n"));
        lua.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    lua.push_str(
        r#"function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"#,
    );
    lua
}

/// Writes [`script`] to `path`.
pub fn write_script(path: &Path, method: &str, body: &str) -> Result<(), Error> {
    std::fs::write(path, script(method, body)).map_err(|source| Error::Script {
        path: path.to_path_buf(),
        source,
    })
}

/// What one wrk run counted, from its `WRKRESULT` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub duration_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Answers other than 2xx/3xx.
    pub status: u64,
    pub timeout: u64,
}

impl WrkResult {
    /// The `WRKRESULT` line of wrk's output, parsed.
    pub fn parse_output(output: &str) -> Result<WrkResult, ParseError> {
        let line = output
            .lines()
            .find_map(|l| l.strip_prefix("WRKRESULT "))
            .ok_or(ParseError::NoLine)?;
        let field = |name: &'static str| -> Result<u64, ParseError> {
            let text = line
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .ok_or(ParseError::Missing(name))?;
            let value: f64 = text.parse().map_err(|_| ParseError::NotANumber {
                field: name,
                text: text.to_string(),
            })?;
            if value.is_finite() && value >= 0.0 {
                Ok(value.round() as u64)
            } else {
                Err(ParseError::NotANumber {
                    field: name,
                    text: text.to_string(),
                })
            }
        };
        Ok(WrkResult {
            requests: field("requests")?,
            duration_us: field("duration_us")?,
            p50_us: field("p50_us")?,
            p99_us: field("p99_us")?,
            connect: field("connect")?,
            read: field("read")?,
            write: field("write")?,
            status: field("status")?,
            timeout: field("timeout")?,
        })
    }

    /// Requests per second over the run, to 0.1 (as the reports have always recorded it).
    pub fn rps(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        let rps = self.requests as f64 / (self.duration_us as f64 / 1e6);
        (rps * 10.0).round() / 10.0
    }

    pub fn p50_ms(&self) -> f64 {
        self.p50_us as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.p99_us as f64 / 1000.0
    }

    /// Connect, read, write and timeout errors.
    pub fn socket_errors(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }

    /// Non-2xx/3xx answers plus socket errors.
    pub fn errors(&self) -> u64 {
        self.status + self.socket_errors()
    }
}

/// One wrk run: `threads` (at most one per connection), `conns` keep-alive connections,
/// for `seconds`, the script at `script` against `url`.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub threads: u32,
    pub conns: u32,
    pub seconds: u64,
    pub url: &'a str,
    pub script: &'a Path,
    /// wrk's `--latency` (prints the distribution; the result line is the same without).
    pub latency: bool,
}

impl Run<'_> {
    /// wrk's arguments.
    pub fn args(&self) -> Vec<String> {
        let threads = self.threads.min(self.conns).max(1);
        let mut args = vec![
            format!("-t{threads}"),
            format!("-c{}", self.conns),
            format!("-d{}s", self.seconds),
            "--timeout".into(),
            "5s".into(),
        ];
        if self.latency {
            args.push("--latency".into());
        }
        args.extend(["-s".into(), self.script.display().to_string()]);
        args.push(self.url.to_string());
        args
    }

    /// Runs wrk, bounded to its duration and 30 s; its output goes to `output` (kept for
    /// the logs) and its result line is returned.
    pub fn measure(&self, output: &Path) -> Result<WrkResult, Error> {
        let text = self.run_bounded(Some(output))?;
        WrkResult::parse_output(&text).map_err(|source| Error::Result {
            output: output.to_path_buf(),
            text,
            source,
        })
    }

    /// A run whose figures nobody reads (a warm-up); its failure is no failure.
    pub fn warm_up(&self) {
        if self.seconds > 0 {
            let _ = self.run_bounded(None);
        }
    }

    fn run_bounded(&self, output: Option<&Path>) -> Result<String, Error> {
        let mut command = Command::new("wrk");
        command
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let within = Duration::from_secs(self.seconds + 30);
        let run = procs::output_within(command, within).map_err(|source| Error::Run {
            url: self.url.to_string(),
            source,
        })?;
        let text = format!("{}{}", run.stdout, run.stderr);
        if let Some(path) = output {
            std::fs::write(path, &text).map_err(|source| Error::Script {
                path: path.to_path_buf(),
                source,
            })?;
        }
        if !run.success {
            return Err(Error::Failed {
                url: self.url.to_string(),
                output: output.map(Path::to_path_buf),
                text,
            });
        }
        Ok(text)
    }
}

/// Why a `WRKRESULT` line could not be read.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("wrk printed no WRKRESULT line")]
    NoLine,
    #[error("the WRKRESULT line has no {0}")]
    Missing(&'static str),
    #[error("the WRKRESULT line's {field} is not a count: {text:?}")]
    NotANumber { field: &'static str, text: String },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}")]
    Script {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("wrk against {url} did not run to its end")]
    Run {
        url: String,
        #[source]
        source: procs::Error,
    },
    #[error("wrk against {url} failed (output in {output:?}):\n{text}")]
    Failed {
        url: String,
        output: Option<PathBuf>,
        text: String,
    },
    #[error("wrk's output ({output}) has no result:\n{text}")]
    Result {
        output: PathBuf,
        text: String,
        #[source]
        source: ParseError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "WRKRESULT requests=88000 duration_us=8001234 p50_us=1390 p99_us=3420 \
                        connect=0 read=2 write=0 status=5 timeout=1";

    #[test]
    fn the_result_line_is_found_among_wrk_output_and_read_whole() {
        let output = format!(
            "Running 8s test @ http://127.0.0.1:1/\n  2 threads and 16 connections\n{LINE}\n"
        );
        let r = WrkResult::parse_output(&output).unwrap();
        assert_eq!(r.requests, 88_000);
        assert_eq!(r.duration_us, 8_001_234);
        assert_eq!((r.p50_ms(), r.p99_ms()), (1.39, 3.42));
        assert_eq!((r.status, r.socket_errors(), r.errors()), (5, 3, 8));
        // 88000 / 8.001234 s, to 0.1 as the reports record it
        assert_eq!(r.rps(), 10998.3);
    }

    #[test]
    fn a_missing_or_broken_result_line_says_what_is_wrong() {
        assert_eq!(
            WrkResult::parse_output("Running 1s test\n"),
            Err(ParseError::NoLine)
        );
        assert_eq!(
            WrkResult::parse_output("WRKRESULT requests=1 duration_us=1"),
            Err(ParseError::Missing("p50_us"))
        );
        let bad = LINE.replace("status=5", "status=nan");
        assert!(matches!(
            WrkResult::parse_output(&bad),
            Err(ParseError::NotANumber {
                field: "status",
                ..
            })
        ));
        // "read=" is not taken from "threads=" or the like: fields match whole names
        let odd = LINE.replace("read=2", "xread=2");
        assert_eq!(
            WrkResult::parse_output(&odd),
            Err(ParseError::Missing("read"))
        );
    }

    #[test]
    fn a_run_of_no_duration_has_no_rate() {
        let r = WrkResult::parse_output(&LINE.replace("duration_us=8001234", "duration_us=0"));
        assert_eq!(r.unwrap().rps(), 0.0);
    }

    #[test]
    fn the_script_sends_the_body_as_json_and_prints_the_result_line() {
        let lua = script("PUT", r#"{"session_id":"a.b"}"#);
        assert!(lua.starts_with("wrk.method = \"PUT\"\n"));
        assert!(lua.contains("wrk.body = [[{\"session_id\":\"a.b\"}]]\n"));
        assert!(lua.contains("wrk.headers[\"Content-Type\"] = \"application/json\""));
        assert!(lua.contains("\"WRKRESULT requests=%.0f duration_us=%.0f"));
        let get = script("GET", "");
        assert!(!get.contains("wrk.body") && !get.contains("Content-Type"));
    }

    #[test]
    fn threads_never_outnumber_connections() {
        let script = PathBuf::from("/tmp/s.lua");
        let run = Run {
            threads: 2,
            conns: 1,
            seconds: 3,
            url: "http://127.0.0.1:9/x",
            script: &script,
            latency: true,
        };
        assert_eq!(
            run.args(),
            [
                "-t1",
                "-c1",
                "-d3s",
                "--timeout",
                "5s",
                "--latency",
                "-s",
                "/tmp/s.lua",
                "http://127.0.0.1:9/x"
            ]
        );
        let run = Run {
            conns: 64,
            latency: false,
            ..run
        };
        assert_eq!(&run.args()[..2], ["-t2", "-c64"]);
        assert!(!run.args().contains(&"--latency".to_string()));
    }
}
