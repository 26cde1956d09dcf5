//! `gbal`: the guarantee-balance gateway.

use std::process::ExitCode;

use clap::Parser;
use gbal::check::{self, CheckOptions, Question};
use gbal::cli::{Cli, Command, NctsCommand};
use gbal::config::{Config, ConfigError};
use gbal::gms_sim::{self, GmsSimOptions};
use gbal::telemetry::Telemetry;
use gbal::{healthcheck, ncts, token};
use gbal::{serve, signals};
use tokio_util::sync::CancellationToken;

/// mimalloc rather than the system's malloc: a balance check makes many small allocations
/// that live for one request, which it serves at about half the CPU (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad configuration or input.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Config(e)) => {
            eprintln!("gbal: {e}");
            ExitCode::from(USAGE)
        }
        Err(Failure::Other(e)) => {
            eprintln!("gbal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(ConfigError),
    Other(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(anyhow::Error::new(e).context("starting the Tokio runtime")))
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Serve {
            config,
            print_config,
        } => {
            let config = Config::load(config.config.as_deref())?;
            if print_config {
                print!("{}", config.to_redacted_toml());
                return Ok(ExitCode::SUCCESS);
            }
            let runtime = runtime()?;
            // Outside the runtime: the trace exporter's blocking HTTP client lives on the SDK's
            // own thread, and is made and dropped there.
            let telemetry = Telemetry::init(&config.telemetry)?;
            let result = runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(signals::cancel_on_signal(shutdown.clone()));
                let result = serve::serve(config, shutdown).await;
                if let Err(e) = &result {
                    tracing::error!(error = format!("{e:#}"), "gbal stopped with an error");
                }
                result
            });
            drop(runtime);
            telemetry.shutdown();
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { config } => {
            let config = Config::load_unchecked(config.config.as_deref())?;
            // The one key migrate needs right: a URL it cannot read is a configuration error.
            config.database.store()?;
            runtime()?.block_on(serve::migrate(&config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(args) => {
            let config = Config::load(args.config.config.as_deref())?;
            println!(
                "{}",
                token::mint(&config, &args.sub, args.scope.as_deref(), args.ttl.0)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ncts(NctsCommand::Ie034 {
            grn,
            access_code,
            tin,
            config,
        }) => {
            let config = Config::load(config.config.as_deref())?;
            match ncts::ie034(&config, &grn, &access_code, tin.as_deref()) {
                Ok(xml) => {
                    println!("{xml}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("gbal: invalid query:\n{e}");
                    Ok(ExitCode::from(USAGE))
                }
            }
        }
        Command::Ncts(NctsCommand::Inspect { file }) => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            match ncts::inspect_file(&bytes) {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(text) => {
                    print!("{text}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Check(args) => {
            let question = match (args.grn, args.access_code, args.balance_id) {
                (Some(grn), Some(access_code), _) => Question::Check {
                    grn,
                    access_code,
                    tin: args.tin,
                    api: args.api,
                },
                (_, _, Some(id)) => Question::BalanceId(id),
                _ => {
                    return Err(Failure::Config(ConfigError(
                        "gbal check needs --grn and --access-code, or --balance-id".into(),
                    )));
                }
            };
            let builtin = Config::builtin();
            let options = CheckOptions {
                url: args
                    .url
                    .unwrap_or_else(|| format!("http://{}", builtin.public.listen)),
                base_path: args.base_path.unwrap_or(builtin.public.base_path),
                token: args.token,
                json: args.json,
                interval: std::time::Duration::from_secs(1),
                timeout: args.timeout.0,
            };
            let answer = runtime()?.block_on(check::run(&options, &question))?;
            println!("{}", answer.text);
            Ok(if answer.balance {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::GmsSim(args) => {
            let runtime = runtime()?;
            let config = Config::load(None)?;
            let telemetry = Telemetry::init(&config.telemetry)?;
            let result = runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(signals::cancel_on_signal(shutdown.clone()));
                let options = GmsSimOptions {
                    listen: args.listen,
                    dataset: args.dataset,
                    reply_to: args.reply_to,
                    reply_token: args.reply_token,
                    token: args.token,
                    query_limit: args.query_limit.unwrap_or(config.simulator.query_limit),
                };
                gms_sim::run(options, shutdown).await
            });
            drop(runtime);
            telemetry.shutdown();
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url, timeout } => match healthcheck::check(&url, timeout.0) {
            Ok(line) => {
                println!("{line}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("gbal healthcheck {url}: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}
