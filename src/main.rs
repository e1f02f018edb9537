//! The `wardops` command: parse arguments, set up logging, hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use wardops::cli::LogFormat;

/// Network monitoring appliance: pings every device in a YAML inventory, knows which are
/// down and since when, and serves it as JSON, Prometheus metrics and web pages.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log lines as human text or as one JSON object each (for journald or Loki).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WARDOPS_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance: probe every device and serve the API on the listen address.
    Serve {
        /// Settings file; the inventory directory is found relative to it.
        #[arg(short, long, default_value = "config/wardops.yaml")]
        config: PathBuf,
    },
    /// Validate the settings and inventory; print every error as file:line:column and
    /// exit 1 if there is any (use it as a pre-merge check in the inventory's repository).
    Check {
        #[arg(short, long, default_value = "config/wardops.yaml")]
        config: PathBuf,
    },
    /// Send a test message to one notification receiver of the settings and say whether
    /// it was delivered (exit 0) or not (exit 1, with the receiver's answer).
    NotifyTest {
        /// The receiver's name, as `notifications.receivers` writes it.
        receiver: String,
        #[arg(short, long, default_value = "config/wardops.yaml")]
        config: PathBuf,
    },
    /// Apply the store's database migrations (also done at every start) and exit.
    Migrate {
        #[arg(short, long, default_value = "config/wardops.yaml")]
        config: PathBuf,
    },
    /// Probe addresses once with the appliance's own pinger and print what came back:
    /// checks that this host lets wardops send ICMP (exit 0 all answered, 1 some did not,
    /// 2 no ICMP socket could be opened).
    Probe {
        /// IPv4 or IPv6 addresses.
        #[arg(required = true)]
        addresses: Vec<std::net::IpAddr>,
        /// Echo requests per address.
        #[arg(long, default_value_t = 2)]
        packets: u32,
        /// How long each request waits for its reply.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Print the bcrypt hash of a password for the users file's `basic_auth_users`
    /// (asked twice on a terminal, else read from the first line of standard input).
    HashPassword {
        /// bcrypt cost: each step doubles the time a check takes (12: about 0.25 s).
        #[arg(long, default_value_t = 12)]
        cost: u32,
    },
    /// Make an API token: prints the token (once) and the users file entry with its
    /// SHA-256 digest.
    NewToken {
        /// The token's name, as the audit log shows it (e.g. vmscrape).
        name: String,
        /// viewer, operator or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Limit it to these regions (comma-separated); every region when left out.
        #[arg(long, value_delimiter = ',')]
        regions: Vec<String>,
    },
    /// Print the JSON Schema of an inventory file or of wardops.yaml, for editors that
    /// validate YAML as it is typed (yaml-language-server); `schema/` holds the same.
    Schema {
        #[arg(value_enum)]
        of: SchemaOf,
    },
    /// Write a complete example configuration of N loopback devices (deterministic: a
    /// smaller N is a subset of a larger one).
    Demo {
        /// Number of devices.
        #[arg(long, default_value_t = 100)]
        devices: usize,
        /// Probe interval for every device (e.g. 1s, 10s).
        #[arg(long, value_parser = parse_duration)]
        interval: Option<Duration>,
        /// Directory to write wardops.yaml and inventory/ into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the man page or a shell's completions, generated from these arguments (the
    /// RPM ships both; see scripts/package).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Subcommand)]
enum Generate {
    /// wardops(1) in roff.
    Man,
    /// Completions for a shell.
    Completions { shell: clap_complete::Shell },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaOf {
    Inventory,
    Settings,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    wardops::config::duration::parse(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = cli.log_format;
    match cli.command {
        Command::Serve { config } => wardops::cli::serve(&config, log),
        Command::Check { config } => wardops::cli::check(&config),
        Command::Migrate { config } => wardops::cli::migrate(&config, log),
        Command::NotifyTest { receiver, config } => wardops::cli::notify_test(&config, &receiver),
        Command::Probe {
            addresses,
            packets,
            timeout,
        } => wardops::cli::probe(&addresses, packets, timeout),
        Command::HashPassword { cost } => wardops::cli::access::hash_password(cost),
        Command::NewToken {
            name,
            role,
            regions,
        } => wardops::cli::access::new_token(&name, &role, &regions),
        Command::Schema { of } => {
            let schema = match of {
                SchemaOf::Inventory => wardops::config::schema::inventory(),
                SchemaOf::Settings => wardops::config::schema::settings(),
            };
            let text = wardops::config::schema::to_text(&schema);
            // A closed pipe (`| head`) is the reader's choice, not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            ExitCode::SUCCESS
        }
        Command::Demo {
            devices,
            interval,
            out,
        } => wardops::cli::demo(&out, devices, interval),
        Command::Generate { what } => generate(what),
    }
}

fn generate(what: Generate) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = match what {
        Generate::Man => clap_mangen::Man::new(Cli::command()).render(&mut out),
        Generate::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "wardops", &mut out);
            Ok(())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wardops generate: {e}");
            ExitCode::FAILURE
        }
    }
}
