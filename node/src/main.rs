//! `chorus`: the Chorus node. See `chorus --help` and the README.

use clap::Parser;

use node::cli::{Cli, Command, RunArgs};
use node::paths::DataDir;
use node::{api, bench, chat, commands, config, daemon, demo, init, sealing};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The attack bench's attacker process: its gossipsub complains of every replay it is told
    // to send, which is the point, not news.
    let quiet = matches!(cli.command, Command::Attacker { .. });
    init_logging(cli.json_logs, quiet);
    if matches!(cli.command, Command::Run(..)) {
        daemon::memory::limit_heap_arenas(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chorus: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "error" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo { nodes, json, keep } = cli.command {
        return demo::run(nodes, json, keep).await;
    }
    if let Command::Bench {
        nodes,
        messages,
        payload,
        durability,
        in_flight,
        latency_messages,
    } = cli.command
    {
        return bench::run(bench::BenchOptions {
            nodes,
            messages,
            latency_messages: latency_messages.unwrap_or(messages),
            payload,
            durability,
            in_flight,
        })
        .await;
    }
    if let Command::AttackBench {
        nodes,
        messages,
        payload,
        in_flight,
        flood_rate,
        seed,
    } = cli.command
    {
        return bench::attack::run(bench::attack::AttackOptions {
            nodes,
            messages,
            payload,
            in_flight,
            flood_rate,
            seed,
        })
        .await;
    }
    if let Command::Attacker {
        peer,
        group,
        rate,
        mix,
        seed,
    } = cli.command
    {
        return bench::attacker::run_process(&peer, &group, rate, &mix, seed).await;
    }
    if let Command::Soak {
        nodes,
        groups,
        group_size,
        duration,
        messages_per_minute,
        commit_every,
        crash_every,
        partition_every,
        fork_window,
        db_memory_mib,
        seed,
        keep,
        json,
    } = cli.command
    {
        let report = bench::soak::run(bench::soak::SoakOptions {
            nodes,
            groups,
            group_size,
            duration,
            messages_per_minute,
            commit_every,
            crash_every,
            partition_every,
            fork_window,
            db_memory_mib,
            seed,
            keep,
            json,
        })
        .await?;
        if report.lost > 0 || report.duplicates > 0 || !report.converged {
            anyhow::bail!(
                "soak failed: {} lost, {} duplicates, converged: {}",
                report.lost,
                report.duplicates,
                report.converged
            );
        }
        return Ok(());
    }
    let data = DataDir::resolve(cli.data)?;
    let client = || api::client::Client::for_data_dir(&data);
    match cli.command {
        Command::Init {
            handle,
            passphrase,
            passphrase_file,
            key_file,
        } => {
            let protection = sealing::KeyProtection {
                passphrase,
                passphrase_file,
                key_file,
            };
            let me = init::init(&data, handle, &protection)?;
            println!(
                "created {} in {}\nfingerprint {}\nnext: chorus --data {} run",
                me.handle(),
                data.root().display(),
                me.fingerprint(),
                data.root().display()
            );
            Ok(())
        }
        Command::Run(args) => {
            let unlock = sealing::Unlock {
                key_file: args.key_file.clone(),
                passphrase_file: args.passphrase_file.clone(),
            };
            let config = merge(&data, args, cli.json_logs)?;
            daemon::run(data, config, unlock).await
        }
        Command::Id { json, qr } => commands::id(&client()?, json, qr).await,
        Command::Contact(c) => commands::contact(&client()?, c).await,
        Command::Group(g) => commands::group(&client()?, g).await,
        Command::Send { group, text } => commands::send(&client()?, &group, &text).await,
        Command::Messages {
            group,
            json,
            follow,
        } => commands::messages(&client()?, &group, json, follow).await,
        Command::Status { json } => commands::status(&client()?, json).await,
        Command::Chat { group, plain } => chat::chat(&client()?, &group, plain).await,
        Command::Demo { .. }
        | Command::Bench { .. }
        | Command::AttackBench { .. }
        | Command::Attacker { .. }
        | Command::Soak { .. } => {
            unreachable!("handled above")
        }
    }
}

/// Defaults, then the config file, then flags.
fn merge(data: &DataDir, args: RunArgs, json_logs: bool) -> anyhow::Result<config::Config> {
    let mut c = config::Config::load(args.config.as_deref(), data.root())?;
    if !args.listen.is_empty() {
        c.listen = args.listen;
    }
    c.bootstrap.extend(args.bootstrap);
    c.relays.extend(args.relay);
    c.external.extend(args.external);
    if let Some(api) = args.api {
        c.api = api;
    }
    if args.no_mdns {
        c.mdns = false;
    }
    c.relay_server |= args.relay_server;
    c.dht_server |= args.dht_server;
    if args.metrics.is_some() {
        c.metrics = args.metrics;
    }
    if let Some(w) = args.fork_window_ms {
        c.fork_window_ms = w;
    }
    if let Some(p) = args.policy {
        c.policy = p;
    }
    if let Some(a) = args.anti_entropy_ms {
        c.anti_entropy_ms = a;
    }
    if let Some(b) = args.beacon_interval_ms {
        c.beacon_interval_ms = b;
    }
    if let Some(d) = args.durability {
        c.durability = d;
    }
    if args.dns_server.is_some() {
        c.dns_server = args.dns_server;
    }
    c.json_logs |= json_logs;
    c.check()?;
    Ok(c)
}
