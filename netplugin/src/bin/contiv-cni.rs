//! `contiv-cni`: the CNI plugin. A thin, synchronous client: it reads the CNI environment
//! and the network configuration on stdin, asks netplugin over its unix socket
//! (`netplugin_socket` in the configuration, default `/run/contiv/netplugin.sock`), and
//! prints the result, or the CNI error object with exit code 1.

use std::io::{Read, Write};
use std::process::ExitCode;

use netplugin::cni::client::UnixClient;
use netplugin::cni::handle;
use netplugin::cni::types::{CniEnv, CniError, CniVersion, code};

/// The largest configuration accepted on stdin.
const MAX_STDIN: u64 = 16 << 20;

fn main() -> ExitCode {
    let env = CniEnv::from_process();
    let mut stdin = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut stdin);
    let (out, exit) = match read {
        Err(e) => {
            error(CniError::new(code::IO_FAILURE, "cannot read stdin").with_details(e.to_string()))
        }
        Ok(_) if stdin.len() as u64 > MAX_STDIN => error(CniError::new(
            code::DECODE,
            format!("the network configuration on stdin is larger than {MAX_STDIN} bytes"),
        )),
        Ok(_) => {
            let run = std::panic::catch_unwind(|| handle(&env, &stdin, |p| UnixClient::new(p)));
            match run {
                Ok(o) => (o.stdout, o.exit_code),
                Err(_) => error(CniError::new(
                    code::INTERNAL,
                    "contiv-cni failed internally",
                )),
            }
        }
    };
    let mut so = std::io::stdout().lock();
    if so.write_all(&out).and_then(|()| so.flush()).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::from(u8::try_from(exit).unwrap_or(1))
}

fn error(e: CniError) -> (Vec<u8>, i32) {
    let mut out = serde_json::to_vec(&e.to_json(CniVersion::LATEST.as_str())).unwrap_or_default();
    out.push(b'\n');
    (out, 1)
}
