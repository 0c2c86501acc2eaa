//! `auralis-bridge`: serves the Auralis engine to WebSocket listeners.
//!
//! With no arguments: the embedded engine on `127.0.0.1:8000`. See `--help`.
//! Exit status: 0 after SIGINT/SIGTERM, 2 for an invalid setting, 1 for any other
//! failure to start or serve.

use std::process::ExitCode;

use anyhow::Context as _;
use auralis_bridge::config::{Cli, Config};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("auralis-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = auralis_bridge::logging::init(config.log_dir.as_deref());
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("auralis-bridge")
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(serve(config)));
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("auralis-bridge: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Flush the log files before exiting.
    drop(logs);
    code
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = auralis_bridge::start(config)
        .await
        .context("cannot start the bridge")?;
    // Watch the signals before saying where to connect: whoever reads the address
    // may stop the bridge at once, and must get a clean exit.
    let signalled = stop_signal()?;
    announce(running.local_addr());
    signalled.await;
    running.shutdown().await;
    Ok(())
}

#[expect(
    clippy::print_stdout,
    reason = "the URL to open is this program's output"
)]
fn announce(addr: std::net::SocketAddr) {
    println!("Auralis bridge listening: open http://{addr}/ (stream: ws://{addr}/ws/stream)");
}

/// Installs the SIGINT/SIGTERM (Ctrl-C) handlers now; the future ends when one
/// arrives.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!("Ctrl-C received"),
                Err(e) => tracing::error!("cannot watch Ctrl-C: {e}"),
            }
        })
    }
}
