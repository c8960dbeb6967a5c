//! `netctl`: Contiv's command line for netmaster.

use clap::{CommandFactory, FromArgMatches};
use netctl::args::{Cli, Cmd};
use netctl::client::{Client, Error};

fn main() {
    std::process::exit(match real_main() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("netctl: {e}");
            e.exit_code()
        }
    });
}

fn real_main() -> Result<(), Error> {
    let cmd = Cli::command();
    let args = netctl::go_flags::normalize(
        std::env::args().collect(),
        &netctl::go_flags::long_names(&cmd),
    );
    let matches = match cmd.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return Ok(());
            }
            let _ = e.print();
            std::process::exit(1);
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Error::Usage(e.to_string()))?;
    if let Cmd::Completion { shell } = cli.cmd {
        clap_complete::generate(shell, &mut Cli::command(), "netctl", &mut std::io::stdout());
        return Ok(());
    }
    let token = match (&cli.token_file, std::env::var("NETMASTER_TOKEN")) {
        (Some(p), _) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::Io(format!("reading the token file {}: {e}", p.display())))?
                .trim()
                .to_string(),
        ),
        (None, Ok(t)) if !t.is_empty() => Some(t),
        _ => None,
    };
    let client = Client::new(
        &cli.netmaster,
        token.map(contiv_model::Secret::from),
        cli.ca_file.as_deref(),
    )?;
    let out = netctl::run::run(cli.cmd, &client)?;
    print!("{out}");
    Ok(())
}
