//! What each subcommand does, kept out of `main.rs` so tests can reach it.

pub mod access;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::probe::icmp::IcmpPinger;
use crate::state::{State, SystemClock};

/// `wardops check`: every error on its own line, exit 1 on any.
pub fn check(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!("{}: ok, {}", path.display(), config.inventory.summary());
            let n = &config.settings.notifications;
            if !n.receivers.is_empty() {
                println!(
                    "notifications: {} receiver(s), {} route(s)",
                    n.receivers.len(),
                    n.routes.len()
                );
            }
            for warning in crate::notify::route::unmatched(n, &config.inventory) {
                println!("warning: {warning}");
            }
            // The files `serve` would read at start, read now so a bad pair shows here.
            if let Some(tls) = &config.settings.tls_server_config {
                if let Err(e) = crate::http::Tls::load(tls) {
                    println!("{e}");
                    eprintln!("1 error(s)");
                    return ExitCode::FAILURE;
                }
                println!("https: {} loaded", tls.cert_file.display());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{} error(s)", errors.0.len());
            ExitCode::FAILURE
        }
    }
}

/// `wardops notify-test RECEIVER`: sends the receiver a test message (no alert behind
/// it, `test: true`) and says what it answered; exit 0 delivered, 1 not.
pub fn notify_test(path: &Path, receiver: &str) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            eprintln!("{} error(s)", errors.0.len());
            return ExitCode::FAILURE;
        }
    };
    let settings = &config.settings.notifications;
    let Some(r) = settings.receivers.iter().find(|r| r.name == receiver) else {
        let names: Vec<&str> = settings.receivers.iter().map(|r| r.name.as_str()).collect();
        eprintln!(
            "no receiver named {receiver:?} in {} (receivers: {})",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    let outcome = runtime.block_on(async {
        // A test message needs no open alerts.
        let open: Arc<dyn crate::notify::OpenNotices> = Arc::new(NoOpenNotices);
        let built = crate::notify::build::build(r, settings, &open)?;
        let message = crate::notify::Message {
            receiver: r.name.clone(),
            idempotency_key: format!(
                "wardops-{}-test-{}",
                r.name,
                chrono::Utc::now().timestamp_millis()
            ),
            group: Default::default(),
            notices: Vec::new(),
            summarised: 0,
            test: true,
        };
        built.deliver.deliver(&message).await?;
        anyhow::Ok(message.idempotency_key)
    });
    match outcome {
        Ok(key) => {
            println!("{receiver}: test message delivered (Idempotency-Key {key})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{receiver}: not delivered: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct NoOpenNotices;

impl crate::notify::OpenNotices for NoOpenNotices {
    fn open_notices(
        &self,
    ) -> futures_util::future::BoxFuture<'_, anyhow::Result<Vec<crate::notify::Notice>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// `wardops demo`.
pub fn demo(out: &Path, devices: usize, interval: Option<Duration>) -> ExitCode {
    match crate::demo::write(out, devices, interval) {
        Ok(summary) => {
            println!("wrote {} to {}", summary, out.display());
            println!(
                "run it: wardops serve -c {}",
                out.join("wardops.yaml").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the demo to {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human text, coloured on a terminal.
    Text,
    /// One JSON object a line (timestamp, level, target, message and the event's fields
    /// at the top level), for journald's or Loki's JSON parsers.
    Json,
}

/// `wardops serve`.
pub fn serve(path: &Path, log: LogFormat) -> ExitCode {
    limit_malloc_arenas();
    init_logging(log);
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!("{e}");
            }
            eprintln!(
                "{}: invalid configuration, {} error(s); nothing started",
                path.display(),
                errors.0.len()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    match runtime.block_on(serve_async(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("wardops: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_async(config: Config) -> anyhow::Result<()> {
    let prober = crate::app::ProberThread::start()?;
    // Entered so that the pinger's receive loops run on the prober's thread.
    let pinger = {
        let _prober_context = prober.handle().enter();
        Arc::new(IcmpPinger::open()?)
    };
    let listen = config.settings.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {e} (set `listen` in the settings or WARDOPS_LISTEN)"
        )
    })?;
    tracing::info!(inventory = %config.inventory.summary(), "wardops starting");
    let clock: Arc<dyn crate::state::Clock> = Arc::new(SystemClock);
    let options = crate::store::startup::StartOptions::from_settings(&config.settings);
    let member = match &config.settings.cluster {
        Some(cluster) => Some(crate::app::cluster::prepare(
            cluster,
            &config.settings.database_url,
            listen,
            config.settings.tls_server_config.is_some(),
        )?),
        None => None,
    };
    let writer_cluster = member.as_ref().map(|m| m.writer.clone());
    let started = crate::store::startup::start_member(
        options,
        clock.clone(),
        Default::default(),
        writer_cluster,
    )
    .await?;
    let actions = crate::store::Actions::new(started.sink.clone());
    let state = State::with_sink(clock, started.sink);
    let now = state.clock().now();
    state.set_silences(crate::maintenance::Silences::new(started.silences, now));
    let member = member.map(|m| m.start(state.clone(), started.health.clone()));
    let store = crate::app::StoreParts {
        db: started.store,
        health: started.health,
        actions,
        restore: started.restore,
        member: member.as_ref().map(|m| m.handle().clone()),
    };
    let served = crate::app::run(
        config,
        pinger,
        state,
        listener,
        store,
        prober.handle(),
        shutdown_signal(),
    )
    .await;
    started.writer.finish(Duration::from_secs(5)).await;
    // Only now: what the writer flushed was written under the leases.
    if let Some(member) = member {
        member.stop(Duration::from_secs(5)).await;
    }
    served
}

/// `wardops probe`: one probe per address, concurrently, with the same pinger `serve` uses.
pub fn probe(addresses: &[std::net::IpAddr], packets: u32, timeout: Duration) -> ExitCode {
    use crate::probe::{Pinger, ProbeSpec};
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    runtime.block_on(async {
        let pinger = match IcmpPinger::open() {
            Ok(p) => Arc::new(p),
            Err(e) => {
                eprintln!("wardops: {e}");
                return ExitCode::from(2);
            }
        };
        let spec = ProbeSpec {
            packets: packets.max(1),
            spacing: Duration::from_millis(200),
            timeout,
        };
        let probes = addresses.iter().map(|&a| {
            let pinger = pinger.clone();
            async move { (a, pinger.probe(a, spec).await) }
        });
        let mut all_answered = true;
        for (address, outcome) in futures_util::future::join_all(probes).await {
            all_answered &= outcome.is_success();
            let rtt = outcome
                .rtt
                .map(|d| format!(", rtt {:.3} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_default();
            let verdict = if outcome.is_success() {
                "up"
            } else {
                "no reply"
            };
            println!(
                "{address}: {}/{} replies{rtt}: {verdict}",
                outcome.received, outcome.sent
            );
        }
        if all_answered {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

/// `wardops migrate`: applies the store's migrations and exits.
pub fn migrate(path: &Path, log: LogFormat) -> ExitCode {
    init_logging(log);
    let settings = match crate::config::Settings::load(path, &crate::config::Env::from_process()) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    match runtime.block_on(crate::store::startup::migrate(&settings)) {
        Ok(backend) => {
            println!("{}: {backend} store migrated", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wardops migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("cannot install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// glibc gives every thread that allocates an arena of its own and keeps their free
/// memory: with tokio's workers and blocking pool that is tens of MiB of RSS at 100,000
/// devices for no speed we can measure. Two arenas, one per core of the target machine,
/// unless the operator chose with glibc's own `MALLOC_ARENA_MAX` (which this call would
/// otherwise override; `bench/memory.py` compares the two).
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only on a terminal: journald and log files get plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Fields flattened beside `message`, so a query says `device="x"`, not
        // `fields.device`.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
