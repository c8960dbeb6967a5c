//! Go's flag packages accept `-name=value` and `-name value` for long flags; clap reads a
//! single dash as a cluster of short flags. Contiv's documents use the Go form
//! (`netctl policy rule-add prod_web 1 -direction=in -protocol=tcp`), so arguments of that
//! shape whose name is a known long flag are rewritten to `--name...` before parsing.

/// Rewrites `-name[=value]` to `--name[=value]` when `name` is one of `long_names`.
/// Single-letter flags, `--` flags, negative numbers and everything after `--` stay.
pub fn normalize(args: Vec<String>, long_names: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for a in args {
        if rest || a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let rewritten = a
            .strip_prefix('-')
            .filter(|s| !s.starts_with('-'))
            .and_then(|s| {
                let name = s.split('=').next().unwrap_or(s);
                (name.len() > 1 && long_names.iter().any(|l| l == name)).then(|| format!("-{a}"))
            });
        out.push(rewritten.unwrap_or(a));
    }
    out
}

/// Every long flag name (and alias) of a command tree.
pub fn long_names(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    collect(cmd, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect(cmd: &clap::Command, out: &mut Vec<String>) {
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            out.push(l.to_string());
        }
        if let Some(aliases) = a.get_all_aliases() {
            out.extend(aliases.iter().map(|s| s.to_string()));
        }
    }
    for s in cmd.get_subcommands() {
        collect(s, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn go_style_long_flags_become_double_dash() {
        let names = vec!["direction".to_string(), "policy".into(), "port".into()];
        assert_eq!(
            normalize(
                v(
                    "netctl policy rule-add p 1 -direction=in -port 80 -p 10 --policy=x -- -direction"
                ),
                &names
            ),
            v("netctl policy rule-add p 1 --direction=in --port 80 -p 10 --policy=x -- -direction")
        );
        assert_eq!(
            normalize(v("netctl x -1 -unknown=3"), &names),
            v("netctl x -1 -unknown=3")
        );
    }
}
