//! The `ecommerce` executable as its users meet it: bad configuration, `--help`, SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::ports::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_ecommerce");

/// A child process that is killed and reaped however the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with a clean environment (no ECOMMERCE_* from the caller).
fn ecommerce(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().stdin(Stdio::null());
    command
}

/// Runs `command` to its exit, killing it (and failing) if it takes over 10 s.
fn run_to_exit(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.0.try_wait().expect("waits").is_none() {
        assert!(Instant::now() < deadline, "did not exit: {command:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    guard
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    guard
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status: guard.0.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// The run failed with exactly one line on stderr, which names `option`.
fn assert_one_line_naming(output: &Output, option: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exited 0; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].contains(option), "{option} not named: {stderr:?}");
}

#[test]
fn an_unknown_role_exits_non_zero_with_one_line_naming_role() {
    let output = run_to_exit(ecommerce(&["serve", "--role", "basket"]));

    assert_one_line_naming(&output, "--role");
    assert!(String::from_utf8_lossy(&output.stderr).contains("basket"));
}

#[test]
fn a_port_in_use_exits_non_zero_with_one_line_naming_listen() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();

    let output = run_to_exit(ecommerce(&[
        "serve", "--role", "payment", "--listen", &address,
    ]));

    assert_one_line_naming(&output, "--listen");
    drop(taken);
}

#[test]
fn an_admin_port_in_use_exits_non_zero_with_one_line_naming_admin_listen() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let listen = format!("127.0.0.1:{}", free_port());

    let output = run_to_exit(ecommerce(&[
        "serve",
        "--role",
        "payment",
        "--listen",
        &listen,
        "--admin-listen",
        &admin,
    ]));

    assert_one_line_naming(&output, "--admin-listen");
    drop(taken);
}

/// The soft and hard open-files limits of process `pid`.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit_at_start() {
    let address = format!("127.0.0.1:{}", free_port());
    // A shell lowers the soft limit, then becomes the binary (same pid).
    let child = Command::new("sh")
        .args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\""])
        .arg(BIN)
        .args(["serve", "--role", "payment", "--listen", &address])
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let child = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !support::http::answers_healthz(&address) {
        assert!(Instant::now() < deadline, "payment did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (soft, hard) = open_files_limits(child.0.id());

    assert_ne!(soft, "256", "the soft limit was kept");
    assert_eq!(soft, hard);
}

#[test]
fn an_api_gateway_url_that_is_not_a_url_exits_non_zero_with_one_line_naming_it() {
    let listen = format!("127.0.0.1:{}", free_port());

    let output = run_to_exit(ecommerce(&[
        "serve",
        "--role",
        "checkout",
        "--listen",
        &listen,
        "--api-gateway-url",
        "notaurl",
    ]));

    assert_one_line_naming(&output, "--api-gateway-url");
}

#[test]
fn an_unknown_fault_exits_non_zero_with_one_line_naming_fault() {
    let listen = format!("127.0.0.1:{}", free_port());

    let output = run_to_exit(ecommerce(&[
        "serve", "--role", "cart", "--listen", &listen, "--fault", "meteor",
    ]));

    assert_one_line_naming(&output, "--fault");
}

#[test]
fn unusable_export_settings_exit_non_zero_with_one_line_naming_the_variable() {
    let listen = format!("127.0.0.1:{}", free_port());
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
        ("OTEL_LOGS_EXPORTER", "console"),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
    ] {
        let mut command = ecommerce(&["serve", "--role", "cart", "--listen", &listen]);
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        command.env("OTEL_LOGS_EXPORTER", "otlp");
        command.env(var, value);

        let output = run_to_exit(command);

        assert_one_line_naming(&output, var);
    }
}

#[test]
fn bad_values_from_the_environment_are_reported_like_options() {
    let mut command = ecommerce(&["serve"]);
    command.env("ECOMMERCE_ROLE", "basket");

    let output = run_to_exit(command);

    assert_one_line_naming(&output, "--role");
}

/// `serve --help` split into one block of text per option, keyed by its long name.
fn help_blocks(help: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let long = trimmed
            .split_whitespace()
            .find(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches(',').to_string());
        match long {
            Some(name) if trimmed.starts_with('-') && indent <= 6 => {
                blocks.push((name, line.to_string()))
            }
            _ => {
                if let Some((_, text)) = blocks.last_mut() {
                    text.push('\n');
                    text.push_str(line);
                }
            }
        }
    }
    blocks
}

#[test]
fn help_lists_every_option_with_its_environment_twin() {
    let mut command = ecommerce(&["serve", "--help"]);
    command.env("ECOMMERCE_SESSION_SECRET", "hunter2-do-not-print");

    let output = run_to_exit(command);

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let blocks = help_blocks(&help);
    for (option, env) in [
        ("--role", "ECOMMERCE_ROLE"),
        ("--listen", "ECOMMERCE_LISTEN"),
        ("--api-gateway-url", "ECOMMERCE_API_GATEWAY_URL"),
        ("--upstream", "ECOMMERCE_UPSTREAM_"),
        ("--cart-data", "ECOMMERCE_CART_DATA"),
        ("--cart-data-replica", "ECOMMERCE_CART_DATA_REPLICA"),
        ("--session-data", "ECOMMERCE_SESSION_DATA"),
        ("--session-data-replica", "ECOMMERCE_SESSION_DATA_REPLICA"),
        ("--product-data", "ECOMMERCE_PRODUCT_DATA"),
        ("--session-secret", "ECOMMERCE_SESSION_SECRET"),
        ("--content-source", "ECOMMERCE_CONTENT_SOURCE"),
        ("--payment-delay-ms", "ECOMMERCE_PAYMENT_DELAY_MS"),
        ("--fault", "ECOMMERCE_FAULTS"),
    ] {
        let block = blocks
            .iter()
            .find(|(name, _)| name == option)
            .map(|(_, text)| text)
            .unwrap_or_else(|| panic!("{option} is not in --help:\n{help}"));
        assert!(
            block.contains(env),
            "{option} does not show {env}:\n{block}"
        );
    }
    assert!(
        !help.contains("hunter2-do-not-print"),
        "--help shows the secret"
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_exits_0() {
    let address = format!("127.0.0.1:{}", free_port());
    let child = ecommerce(&[
        "serve",
        "--role",
        "payment",
        "--listen",
        &address,
        "--payment-delay-ms",
        "800-800",
    ])
    .env("RUST_LOG", "warn")
    .stdout(Stdio::null())
    .spawn()
    .expect("the binary starts");
    let mut child = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !support::http::answers_healthz(&address) {
        assert!(Instant::now() < deadline, "payment did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A payment that takes 800 ms, started before the signal.
    let (answer_tx, answer_rx) = mpsc::channel();
    let target = address.clone();
    std::thread::spawn(move || {
        let body = r#"{"amount": 3.5, "card": {"number": "4111 1111 1111 1111"}}"#;
        let request = format!(
            "POST /process HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let answer = TcpStream::connect(&target).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(request.as_bytes())?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        });
        let _ = answer_tx.send(answer.map_err(|e| e.to_string()));
    });
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());

    let answer = answer_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the in-flight request got an answer")
        .expect("the in-flight request completed");
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"message\":\"success\""), "{answer}");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        !support::http::answers_healthz(&address),
        "still serving after exit"
    );
}

/// Starts `ecommerce serve <args>` at `address` with its log (stderr) kept, once healthy.
fn serve_logging(address: &str, args: &[&str]) -> ChildGuard {
    let mut argv = vec!["serve", "--listen", address];
    argv.extend_from_slice(args);
    let child = ecommerce(&argv)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let child = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !support::http::answers_healthz(address) {
        assert!(Instant::now() < deadline, "{args:?} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Sends one raw request (which says `Connection: close`), then stops the process:
/// the answer and everything it logged.
fn answer_and_log(mut child: ChildGuard, address: &str, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let mut log = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (answer, log)
}

#[test]
fn lines_logged_while_serving_a_request_name_its_trace() {
    let address = format!("127.0.0.1:{}", free_port());
    let child = serve_logging(
        &address,
        &[
            "--role",
            "payment",
            "--payment-delay-ms",
            "0",
            "--fault",
            "payment-failure=1",
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";

    // A payment the fault declines: the handler logs the decline, then the request line.
    let body = r#"{"amount": 3.5, "card": {"number": "4111 1111 1111 1111"}}"#;
    let request = format!(
        "POST /process HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
         traceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, log) = answer_and_log(child, &address, &request);

    assert!(answer.starts_with("HTTP/1.1 402"), "{answer}");
    for msg in ["msg=\"payment declined\"", "msg=request method=POST"] {
        let line = log
            .lines()
            .find(|l| l.contains(msg))
            .unwrap_or_else(|| panic!("no {msg} line in:\n{log}"));
        assert!(line.contains(&format!("trace_id={trace_id}")), "{line}");
        assert!(line.contains(" span_id="), "{line}");
    }
}

/// A store failure is a short 503 for the client and, in the request's log line at error
/// level, the whole chain of causes down to the client library's own words.
#[test]
fn a_5xx_log_line_shows_the_cause_chain_and_the_client_a_short_reason() {
    let address = format!("127.0.0.1:{}", free_port());
    // Nothing listens on the store's port: every connection is refused.
    let dead_store = format!("redis://127.0.0.1:{}", free_port());
    let child = serve_logging(&address, &["--role", "cart", "--cart-data", &dead_store]);

    let body = r#"{"session_id": "chain-test"}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, log) = answer_and_log(child, &address, &request);

    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.ends_with(r#"{"message":"failure","reason":"cart-data is unavailable"}"#),
        "{answer}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("msg=request method=POST"))
        .unwrap_or_else(|| panic!("no request line in:\n{log}"));
    assert!(line.contains("level=error"), "{line}");
    assert!(
        line.contains("error=\"cart-data is unavailable: no connection: "),
        "{line}"
    );
    assert!(line.to_lowercase().contains("refused"), "{line}");
}

#[test]
fn faults_set_writes_the_state_every_process_follows() {
    let state = support::stores::RedisServer::primary();
    let url = format!("{}/0", state.url());

    let output = run_to_exit(ecommerce(&[
        "faults",
        "set",
        "--fault-state",
        &url,
        "--for",
        "10m",
        "--traffic-level",
        "3",
        "payment-failure=0.5",
        "basic-bug",
    ]));

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (version, written) = runtime.block_on(async {
        use ecommerce::faults::{shared::Control, FaultSwitch, Faults};
        let switch = std::sync::Arc::new(FaultSwitch::new(Faults::default()));
        let control = Control::shared(&url, switch, Faults::default(), "test".into()).unwrap();
        control.read().await.unwrap()
    });
    assert_eq!(version, 1);
    assert_eq!(written.faults, ["payment-failure=0.5", "basic-bug"]);
    assert_eq!(written.traffic_level, 3.0);
    let until = written.until_ms.expect("an end");
    let in_ten_minutes = ecommerce::faults::shared::now_ms() + 600_000;
    assert!(until.abs_diff(in_ten_minutes) < 10_000, "{until}");
}

#[test]
fn unusable_fault_states_exit_non_zero_with_one_line_naming_the_option() {
    let nobody = format!("redis://127.0.0.1:{}/0", free_port());
    let unreachable = run_to_exit(ecommerce(&[
        "faults",
        "set",
        "--fault-state",
        &nobody,
        "--wait",
        "1",
        "basic-bug",
    ]));
    let live_bind = run_to_exit(ecommerce(&[
        "faults",
        "set",
        "--fault-state",
        &nobody,
        "bind-localhost",
    ]));
    let not_redis = run_to_exit(ecommerce(&[
        "serve",
        "--role",
        "cart",
        "--fault-state",
        "http://state:6379",
    ]));

    assert_one_line_naming(&unreachable, "--fault-state");
    assert_one_line_naming(&live_bind, "bind-localhost");
    assert_one_line_naming(&not_redis, "--fault-state");
}

#[test]
fn a_generate_count_that_is_not_a_number_exits_non_zero_with_one_line_naming_generate() {
    let url = format!("postgres://postgres@127.0.0.1:{}/products", free_port());
    let from_option = run_to_exit(ecommerce(&[
        "migrate",
        "--product-data",
        &url,
        "--generate",
        "abc",
    ]));
    let mut from_env = ecommerce(&["migrate", "--product-data", &url]);
    from_env.env("ECOMMERCE_GENERATE", "-5");
    let from_env = run_to_exit(from_env);
    let too_many = run_to_exit(ecommerce(&[
        "migrate",
        "--product-data",
        &url,
        "--generate",
        "10000000",
    ]));

    assert_one_line_naming(&from_option, "--generate");
    assert!(String::from_utf8_lossy(&from_option.stderr).contains("abc"));
    assert_one_line_naming(&from_env, "--generate");
    assert_one_line_naming(&too_many, "--generate");
}
