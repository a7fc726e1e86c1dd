//! ctr's environment variables as fallbacks of advisor's own.
//!
//! ctr reads `CONTAINERD_ADDRESS` and `CONTAINERD_NAMESPACE`; a node set up
//! for ctr has them exported, so advisor reads them too — after its own
//! `ADVISOR_CONTAINERD` and `ADVISOR_NAMESPACE`, which win when both are set.
//! The command line wins over both. clap's `env` takes one variable per
//! argument, so the choice is made before parsing: [`ctr_fallbacks`] decides
//! (a pure function of the environment), [`command`] points the arguments at
//! the variables it chose.
//!
//! A namespace from ctr's variable was exported for ctr (often `k8s.io`):
//! parsing records it in [`super::GlobalArgs::namespace_origin`], so advisor
//! treats it as its own only if advisor created it ([`crate::containerd::owner`]).
//!
//! After parsing, the config file fills in what neither the command line nor
//! a variable gave ([`config`] reads it; `--config` and its variable
//! `ADVISOR_CONFIG` are parsed like any flag).
//!
//! Owns that choice and that order only; it must not read any other variable
//! or do any work.
use super::{Cli, config};
use crate::containerd::owner::NamespaceOrigin;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;

/// A global flag read from advisor's variable first, then from ctr's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The clap argument (the field of [`super::GlobalArgs`]).
    pub arg: &'static str,
    /// advisor's variable, named in the argument's `env` attribute.
    pub own: &'static str,
    /// ctr's variable.
    pub ctr: &'static str,
}

/// The global flags ctr also reads from its environment.
pub const FALLBACKS: [Fallback; 2] = [
    Fallback {
        arg: "address",
        own: "ADVISOR_CONTAINERD",
        ctr: "CONTAINERD_ADDRESS",
    },
    Fallback {
        arg: "namespace",
        own: "ADVISOR_NAMESPACE",
        ctr: "CONTAINERD_NAMESPACE",
    },
];

/// The flags to read from ctr's variable: those whose own variable is unset
/// (or empty, which ctr treats as unset too) while ctr's is set and not empty.
pub fn ctr_fallbacks(lookup: impl Fn(&str) -> Option<OsString>) -> Vec<Fallback> {
    let set = |k: &str| lookup(k).is_some_and(|v| !v.is_empty());
    FALLBACKS
        .into_iter()
        .filter(|f| !set(f.own) && set(f.ctr))
        .collect()
}

/// advisor's command, with each flag of `fallbacks` reading ctr's variable.
/// clap reads a variable's value when it is named here, so the command is
/// built from the environment as it is now.
pub fn command(fallbacks: &[Fallback]) -> clap::Command {
    fallbacks.iter().fold(Cli::command(), |cmd, f| {
        cmd.mut_arg(f.arg, |a| a.env(f.ctr))
    })
}

/// A parsed command line and the flags whose value came from ctr's variables.
#[derive(Debug)]
pub struct Parsed {
    pub cli: Cli,
    pub from_ctr: Vec<Fallback>,
}

impl Parsed {
    /// A note when the namespace is ctr's: a node's exported
    /// CONTAINERD_NAMESPACE may well be `k8s.io`, so advisor works in it but
    /// deletes there only if advisor created it.
    pub fn note(&self) -> Option<String> {
        self.from_ctr.iter().find(|f| f.arg == "namespace").map(|f| {
            format!(
                "note: namespace `{ns}` from ctr's {ctr} (ADVISOR_NAMESPACE is unset): advisor works in it but treats it as \
                 its own only if advisor created it (label {label}={value}); otherwise a clean-up there (cold bench, calibrate) \
                 is refused unless --force. Set ADVISOR_NAMESPACE or -n to use advisor's own namespace",
                ns = self.cli.global.namespace,
                ctr = f.ctr,
                label = crate::containerd::owner::OWNER_LABEL,
                value = crate::containerd::owner::OWNER_VALUE,
            )
        })
    }
}

/// Why a command line cannot run: clap's error (a usage error, or --help and
/// --version, which clap prints), or the config file's (exit code 1).
#[derive(Debug)]
pub enum ParseError {
    Cli(clap::Error),
    Config(config::Error),
}

/// Parse `args` (the program name first) with ctr's variables as fallbacks,
/// `lookup` telling which variables are set, then fill in what neither gave
/// from the config file ([`config`]): `--config`'s, `ADVISOR_CONFIG`'s, else
/// `default_config` if it exists.
pub fn try_parse_from<I, T>(
    args: I,
    lookup: impl Fn(&str) -> Option<OsString>,
    default_config: &Path,
) -> Result<Parsed, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let empty_config = lookup(config::VAR).is_some_and(|v| v.is_empty());
    let fallbacks = ctr_fallbacks(&lookup);
    let mut cmd = command(&fallbacks);
    if empty_config {
        // Empty is unset, as for ctr's variables (clap would take "" for a
        // path): the default file, if any.
        cmd = cmd.mut_arg("config", |a| a.env(None::<&'static str>));
    }
    parse_with(cmd, fallbacks, args, default_config)
}

/// [`try_parse_from`] with the command built (`fallbacks` are the flags it
/// points at ctr's variables).
pub(crate) fn parse_with<I, T>(
    mut cmd: clap::Command,
    fallbacks: Vec<Fallback>,
    args: I,
    default_config: &Path,
) -> Result<Parsed, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = cmd
        .try_get_matches_from_mut(args)
        .map_err(ParseError::Cli)?;
    let mut cli =
        Cli::from_arg_matches(&matches).map_err(|e| ParseError::Cli(e.format(&mut cmd)))?;
    let from_ctr: Vec<Fallback> = fallbacks
        .into_iter()
        .filter(|f| matches.value_source(f.arg) == Some(clap::parser::ValueSource::EnvVariable))
        .collect();
    cli.global.namespace_origin = namespace_origin(&from_ctr);
    // Completions and man pages come from the flags alone: a node's broken
    // config file must not stop them.
    if matches!(
        cli.command,
        super::Command::Completions(_) | super::Command::Man(_)
    ) {
        return Ok(Parsed { cli, from_ctr });
    }
    // The file fills in only what no flag and no variable gave: a namespace
    // from it is not ctr's, so the origin above stands.
    let named = config::Named::of(matches.value_source("config"));
    let path = cli
        .global
        .config
        .clone()
        .unwrap_or_else(|| default_config.to_path_buf());
    if let Some(file) = config::load(&path, named).map_err(ParseError::Config)? {
        let keys = config::apply(&mut cli, &matches, &file);
        cli.global.config_used = Some(config::Used { path, keys });
    }
    Ok(Parsed { cli, from_ctr })
}

/// Where the namespace came from, given the flags whose value came from
/// ctr's variables.
pub fn namespace_origin(from_ctr: &[Fallback]) -> NamespaceOrigin {
    if from_ctr.iter().any(|f| f.arg == "namespace") {
        NamespaceOrigin::Ctr
    } else {
        NamespaceOrigin::Advisor
    }
}

/// Parse the process's arguments with ctr's variables as fallbacks and the
/// config file ([`config::DEFAULT_PATH`] unless named).
pub fn try_parse() -> Result<Parsed, ParseError> {
    try_parse_from(
        std::env::args_os(),
        |k| std::env::var_os(k),
        Path::new(config::DEFAULT_PATH),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    /// A default config file that does not exist: none is read.
    const NO_CONFIG: &str = "/nonexistent/advisor-test/config.toml";

    fn args(fallbacks: &[Fallback]) -> Vec<&'static str> {
        fallbacks.iter().map(|f| f.arg).collect()
    }

    #[test]
    fn ctr_variables_fill_in_when_advisor_s_are_unset() {
        let f = ctr_fallbacks(env(&[
            ("CONTAINERD_ADDRESS", "/run/k3s/containerd/containerd.sock"),
            ("CONTAINERD_NAMESPACE", "bench"),
        ]));
        assert_eq!(args(&f), ["address", "namespace"]);
    }

    #[test]
    fn advisor_s_variables_win_over_ctr_s() {
        let f = ctr_fallbacks(env(&[
            ("ADVISOR_CONTAINERD", "/a.sock"),
            ("CONTAINERD_ADDRESS", "/b.sock"),
            ("ADVISOR_NAMESPACE", "mine"),
            ("CONTAINERD_NAMESPACE", "theirs"),
        ]));
        assert_eq!(f, []);
    }

    #[test]
    fn each_flag_is_decided_on_its_own() {
        let f = ctr_fallbacks(env(&[
            ("ADVISOR_CONTAINERD", "/a.sock"),
            ("CONTAINERD_ADDRESS", "/b.sock"),
            ("CONTAINERD_NAMESPACE", "theirs"),
        ]));
        assert_eq!(args(&f), ["namespace"]);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let f = ctr_fallbacks(env(&[
            ("ADVISOR_CONTAINERD", ""),
            ("CONTAINERD_ADDRESS", "/b.sock"),
            ("CONTAINERD_NAMESPACE", ""),
        ]));
        assert_eq!(args(&f), ["address"]);
        assert_eq!(ctr_fallbacks(env(&[])), []);
    }

    /// The argument ids name real arguments (clap panics on an unknown one
    /// in `mut_arg`), and the command with every fallback still parses.
    #[test]
    fn fallbacks_name_the_global_flags() {
        let cmd = command(&FALLBACKS);
        for f in FALLBACKS {
            let a = cmd.get_arguments().find(|a| a.get_id() == f.arg);
            assert_eq!(
                a.and_then(|a| a.get_env()).and_then(|e| e.to_str()),
                Some(f.ctr)
            );
            let own = Cli::command();
            let a = own.get_arguments().find(|a| a.get_id() == f.arg);
            assert_eq!(
                a.and_then(|a| a.get_env()).and_then(|e| e.to_str()),
                Some(f.own),
                "FALLBACKS names {} but the flag reads another variable",
                f.own
            );
        }
        cmd.debug_assert();
    }

    /// The command line wins over any variable.
    #[test]
    fn flags_win_over_ctr_variables() {
        let p = try_parse_from(
            ["advisor", "-a", "/flag.sock", "-n", "flag", "doctor"],
            env(&[
                ("CONTAINERD_ADDRESS", "/b.sock"),
                ("CONTAINERD_NAMESPACE", "theirs"),
            ]),
            Path::new(NO_CONFIG),
        )
        .unwrap();
        assert_eq!(p.cli.global.address, std::path::Path::new("/flag.sock"));
        assert_eq!(p.cli.global.namespace, "flag");
        assert_eq!(p.from_ctr, [], "no value came from ctr's variables");
        assert_eq!(p.note(), None);
        assert_eq!(p.cli.global.namespace_origin, NamespaceOrigin::Advisor);
    }

    /// A namespace from ctr's variable is marked as such (advisor's only if
    /// labelled); from -n, ADVISOR_NAMESPACE or the default it is advisor's.
    /// (clap reads the variables' values from the process's environment:
    /// tests/it/cli.rs runs the binary with them set.)
    #[test]
    fn the_namespace_s_origin_is_recorded() {
        let [address, namespace] = FALLBACKS;
        assert_eq!(namespace_origin(&[namespace]), NamespaceOrigin::Ctr);
        assert_eq!(
            namespace_origin(&[address, namespace]),
            NamespaceOrigin::Ctr
        );
        // ctr's socket alone does not touch the namespace's origin.
        assert_eq!(namespace_origin(&[address]), NamespaceOrigin::Advisor);
        assert_eq!(namespace_origin(&[]), NamespaceOrigin::Advisor);

        let origin = |argv: &[&str], vars: &[(&str, &str)]| {
            try_parse_from(argv.iter().copied(), env(vars), Path::new(NO_CONFIG))
                .unwrap()
                .cli
                .global
                .namespace_origin
        };
        let ctr = [("CONTAINERD_NAMESPACE", "k8s.io")];
        assert_eq!(
            origin(&["advisor", "-n", "k8s.io", "doctor"], &ctr),
            NamespaceOrigin::Advisor,
            "-n k8s.io is the user's choice"
        );
        assert_eq!(
            origin(&["advisor", "doctor"], &[]),
            NamespaceOrigin::Advisor
        );
    }

    /// The note says what now happens in a namespace from ctr's variable.
    #[test]
    fn the_note_says_clean_ups_in_ctr_s_namespace_are_refused_unless_advisor_s() {
        let p = Parsed {
            cli: Cli::try_parse_from(["advisor", "-n", "k8s.io", "doctor"]).unwrap(),
            from_ctr: vec![FALLBACKS[1]],
        };
        let note = p.note().unwrap();
        for want in [
            "note: namespace `k8s.io` from ctr's CONTAINERD_NAMESPACE",
            "only if advisor created it",
            "refused unless --force",
            "ADVISOR_NAMESPACE or -n",
        ] {
            assert!(note.contains(want), "{want} missing: {note}");
        }
    }
}
