//! The command line: what each subcommand is for, in words a newcomer understands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::duration::HumanDuration;

/// `gbal --version`: the package version and the git commit it was built from ("unknown"
/// when built without git, e.g. from a source tarball).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GBAL_GIT_COMMIT"),
    ")"
);

/// gbal: the guarantee-balance gateway.
///
/// Callers ask for the balance of a guarantee (GRN + access code); gbal sends an IE034 query to
/// the Guarantee Management System, tracks the request until the reply arrives, and answers
/// HMRC's Guarantee Balance API, versions 1 and 2.
///
/// Try it: `gbal serve` (no configuration needed), then in another terminal
/// `gbal token --sub me` and `gbal check --url http://127.0.0.1:8080 --token <token>
/// --grn 26GB0000010000012 --access-code AC01 --tin GB954131533000`.
#[derive(Debug, Parser)]
#[command(name = "gbal", version = VERSION, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run gbal: the public API, the internal listener for GMS replies and metrics, and the
    /// expiry job. With no configuration at all it runs self-contained for development:
    /// SQLite under ./data, the built-in GMS simulator, a development token secret.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Apply the database migrations of the configured database, then exit (run it as a
    /// Kubernetes Job before a rollout).
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a signed development token (needs an HS256 secret; development mode has one).
    Token(TokenArgs),
    /// Work with NCTS messages: print the IE034 gbal would send, or inspect a message file.
    #[command(subcommand)]
    Ncts(NctsCommand),
    /// Ask a running gbal for a balance (or for an earlier request by its id), wait for the
    /// answer while it is pending, and print it.
    Check(CheckArgs),
    /// Run the GMS simulator as an HTTP server: it takes IE034 messages (and phase-5 JSON
    /// calls) like GMS does and posts IE037/IE906/IE917 replies back to gbal.
    GmsSim(GmsSimArgs),
    /// Exit 0 when a plain-HTTP URL answers 2xx (a health check for images without curl).
    Healthcheck {
        /// The URL to GET, e.g. http://127.0.0.1:8080/livez.
        url: String,
        /// Give up after this long.
        #[arg(long, default_value = "3s", value_parser = parse_duration)]
        timeout: HumanDuration,
    },
}

/// `--config FILE`, shared by the subcommands that read gbal's configuration.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// A TOML file layered over the built-in defaults (see config/default.toml); GBAL_*
    /// environment variables override both.
    #[arg(long, value_name = "FILE", env = "GBAL_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `gbal check`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["grn", "balance_id"])))]
pub struct CheckArgs {
    /// gbal's public URL [default: `public.listen` of the built-in configuration].
    #[arg(long)]
    pub url: Option<String>,
    /// The API's base path [default: `public.base_path` of the built-in configuration].
    #[arg(long)]
    pub base_path: Option<String>,
    /// A bearer token (`gbal token --sub me` makes one for a development gbal).
    #[arg(long, env = "GBAL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Guarantee reference number to check.
    #[arg(long, requires = "access_code", conflicts_with = "balance_id")]
    pub grn: Option<String>,
    /// The guarantee's access code.
    #[arg(long)]
    pub access_code: Option<String>,
    /// The principal's EORI/TIN (API v1).
    #[arg(long)]
    pub tin: Option<String>,
    /// API version: 1 (asynchronous, with TIN) or 2 (synchronous).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub api: u8,
    /// Read an earlier v1 request by its balance id instead.
    #[arg(long)]
    pub balance_id: Option<String>,
    /// Print gbal's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Stop polling a pending request after this long.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: HumanDuration,
}

/// `gbal gms-sim`.
#[derive(Debug, Args)]
pub struct GmsSimArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: std::net::SocketAddr,
    /// A TOML dataset of guarantees (see docs/sandbox.md); the built-in sandbox when absent.
    #[arg(long, value_name = "FILE")]
    pub dataset: Option<PathBuf>,
    /// gbal's internal listener; replies go to `<URL>/balances/<recipient>`.
    #[arg(long, value_name = "URL")]
    pub reply_to: Option<String>,
    /// Bearer token sent with every reply (gbal's `internal.reply_token`).
    #[arg(long, env = "GBAL_SIM_REPLY_TOKEN", hide_env_values = true)]
    pub reply_token: Option<String>,
    /// Bearer token gbal must send (gbal's `gms.token`); none required when absent.
    #[arg(long, env = "GBAL_SIM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Queries each TIN may make per 24 hours [default: `simulator.query_limit` of gbal's
    /// configuration].
    #[arg(long)]
    pub query_limit: Option<u32>,
}

/// `gbal token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The caller's identity (the token's `sub`): requests are visible only to their caller.
    #[arg(long)]
    pub sub: String,
    /// The scope to grant; defaults to the one gbal requires.
    #[arg(long)]
    pub scope: Option<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: HumanDuration,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `gbal ncts ...`.
#[derive(Debug, Subcommand)]
pub enum NctsCommand {
    /// Print the IE034 gbal would send for a query (as it travels, inside <transitRequest>).
    Ie034 {
        /// Guarantee reference number.
        #[arg(long)]
        grn: String,
        /// The guarantee's access code (4 letters or digits).
        #[arg(long)]
        access_code: String,
        /// The principal's EORI/TIN (API v1 queries carry it).
        #[arg(long)]
        tin: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validate an IE034, IE037, IE906 or IE917 file against its schema rules and print what it
    /// says, or every problem with its line and column (exit 1).
    Inspect {
        /// The XML file.
        file: PathBuf,
    },
}

fn parse_duration(text: &str) -> Result<HumanDuration, String> {
    crate::duration::parse(text)
        .map(HumanDuration)
        .map_err(|e| e.to_string())
}
