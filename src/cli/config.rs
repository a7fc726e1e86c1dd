//! advisor's config file: what a node repeats on every command line —
//! containerd's socket, the namespace, the registry, containerd's registry
//! host directory, the stargz metrics URL, the lazy reset command, plain HTTP
//! — written once (examples/config.toml).
//!
//! The file is `--config FILE`, else the one `ADVISOR_CONFIG` names, else
//! [`DEFAULT_PATH`] if it exists: an absent default file is no config, a file
//! named by the flag or the variable must exist. Flat TOML, every key
//! optional; an unknown key is an error naming it and the file.
//!
//! A value from the file is used only where neither the command line nor a
//! variable gave one: flag > advisor's variable > ctr's variable > the file >
//! the built-in default. A namespace from the file was chosen for advisor, as
//! one from `ADVISOR_NAMESPACE` is: advisor treats it as its own
//! ([`crate::containerd::owner::NamespaceOrigin::Advisor`]).
//!
//! Owns reading the file and filling in the parsed arguments; commands see
//! the arguments filled in, never this module's types (doctor only says
//! which file was read, [`Used`]).
use super::{Cli, Command};
use clap::parser::ValueSource;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The config file read when neither `--config` nor `ADVISOR_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/advisor/config.toml";

/// The variable naming the config file, `--config`'s (empty: unset).
pub const VAR: &str = "ADVISOR_CONFIG";

/// The file's keys: each is the long flag's name, `_` for `-`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// containerd's socket (`-a/--address`).
    pub address: Option<String>,
    /// The namespace advisor works in (`-n/--namespace`).
    pub namespace: Option<String>,
    /// The registry of `doctor`, `calibrate` and `probe` (`--registry`).
    pub registry: Option<String>,
    /// containerd's registry host directory (`--hosts-dir`).
    pub hosts_dir: Option<String>,
    /// The stargz snapshotter's metrics URL (`--stargz-metrics` of `doctor`,
    /// `bench`, `calibrate`).
    pub stargz_metrics: Option<String>,
    /// The command restarting the stargz snapshotter with empty caches
    /// (`--lazy-reset-cmd` of `bench` and `calibrate`).
    pub lazy_reset_cmd: Option<String>,
    /// Plain HTTP to the registry (`--plain-http`).
    pub plain_http: Option<bool>,
}

/// Who named the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// `--config FILE`.
    Flag,
    /// `ADVISOR_CONFIG`.
    Env,
    /// Nobody: [`DEFAULT_PATH`] (or the one a test gives).
    Default,
}

impl Named {
    /// From the way clap got `--config`'s value.
    pub fn of(source: Option<ValueSource>) -> Self {
        match source {
            Some(ValueSource::CommandLine) => Named::Flag,
            Some(ValueSource::EnvVariable) => Named::Env,
            _ => Named::Default,
        }
    }

    fn by(self) -> &'static str {
        match self {
            Named::Flag => "named by --config",
            Named::Env => "named by ADVISOR_CONFIG",
            Named::Default => "the default config file",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Named::Flag => "give --config an existing file",
            Named::Env => "point ADVISOR_CONFIG at an existing file, or unset it",
            Named::Default => "fix the file or remove it",
        }
    }
}

/// A config file that cannot be used: exit code 1, the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file {} ({}) does not exist: {}", .path.display(), .named.by(), .named.fix())]
    Missing { path: PathBuf, named: Named },
    #[error("cannot read config file {} ({}): {source}", .path.display(), .named.by())]
    Read {
        path: PathBuf,
        named: Named,
        source: std::io::Error,
    },
    #[error("config file {}: {problem}", .path.display())]
    Invalid { path: PathBuf, problem: String },
}

/// The config file in effect and the keys whose values were taken from it
/// (those no flag or variable gave, of the arguments the command has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub path: PathBuf,
    pub keys: Vec<&'static str>,
}

/// The file at `path`; `None` when it is the default one (`named`) and does
/// not exist. Read whole, at most [`crate::input::MAX_INPUT_TEXT`].
pub fn load(path: &Path, named: Named) -> Result<Option<FileConfig>, Error> {
    match crate::input::read_text(path, crate::input::MAX_INPUT_TEXT) {
        Ok(text) => parse(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match named {
            Named::Default => Ok(None),
            _ => Err(Error::Missing {
                path: path.to_path_buf(),
                named,
            }),
        },
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            named,
            source,
        }),
    }
}

/// Parse and check the file's text; `path` names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, Error> {
    let invalid = |problem: String| Error::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let file: FileConfig =
        toml::from_str(text).map_err(|e| invalid(crate::image::spec::toml_message(&e, text)))?;
    for (key, value) in [
        ("address", &file.address),
        ("namespace", &file.namespace),
        ("registry", &file.registry),
        ("hosts_dir", &file.hosts_dir),
        ("stargz_metrics", &file.stargz_metrics),
        ("lazy_reset_cmd", &file.lazy_reset_cmd),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid(format!(
                "`{key}` is empty: give it a value or remove the key"
            )));
        }
    }
    Ok(file)
}

/// Whether a value from the file may take an argument's place: neither the
/// command line nor a variable (advisor's or ctr's) gave it.
pub fn file_may_set(source: Option<ValueSource>) -> bool {
    matches!(source, None | Some(ValueSource::DefaultValue))
}

/// Fill in `cli` from `file` wherever `matches` (the parse `cli` came from)
/// says no flag and no variable gave a value; the keys used. The namespace's
/// origin is left as parsed: one from the file was not ctr's.
pub fn apply(cli: &mut Cli, matches: &clap::ArgMatches, file: &FileConfig) -> Vec<&'static str> {
    let mut used = Vec::new();
    let free = |id: &str| file_may_set(matches.value_source(id));
    let global = &mut cli.global;
    if let Some(a) = file.address.as_ref().filter(|_| free("address")) {
        global.address = PathBuf::from(a);
        used.push("address");
    }
    if let Some(n) = file.namespace.as_ref().filter(|_| free("namespace")) {
        global.namespace = n.clone();
        used.push("namespace");
    }
    if let Some(d) = file.hosts_dir.as_ref().filter(|_| free("hosts_dir")) {
        global.hosts_dir = PathBuf::from(d);
        used.push("hosts_dir");
    }
    if let Some(p) = file.plain_http.filter(|_| free("plain_http")) {
        global.plain_http = p;
        used.push("plain_http");
    }
    // The commands' own flags have no built-in default: unset is `None`.
    // Each command's slots for the file's registry, reset command and metrics URL.
    let (registry, reset, metrics) = match &mut cli.command {
        Command::Doctor(a) => (Some(&mut a.registry), None, Some(&mut a.stargz_metrics)),
        Command::Bench(a) => (
            None,
            Some(&mut a.lazy_reset_cmd),
            Some(&mut a.stargz_metrics),
        ),
        Command::Probe(a) => (Some(&mut a.registry), None, None),
        Command::Calibrate(a) => (
            Some(&mut a.registry),
            Some(&mut a.lazy_reset_cmd),
            Some(&mut a.stargz_metrics),
        ),
        _ => (None, None, None),
    };
    for (arg, key, value) in [
        (registry, "registry", &file.registry),
        (reset, "lazy_reset_cmd", &file.lazy_reset_cmd),
        (metrics, "stargz_metrics", &file.stargz_metrics),
    ] {
        if let Some(arg) = arg
            && arg.is_none()
            && value.is_some()
        {
            arg.clone_from(value);
            used.push(key);
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::env::{ParseError, parse_with};
    use crate::containerd::owner::NamespaceOrigin;
    use clap::CommandFactory;

    const FULL: &str = r#"
# a node's settings
address = "/run/k3s/containerd/containerd.sock"
namespace = "bench"
registry = "registry.local:5000"
hosts_dir = "/etc/k3s/certs.d"
stargz_metrics = "http://127.0.0.1:8234/metrics"
lazy_reset_cmd = "systemctl restart stargz-snapshotter"
plain_http = true
"#;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// advisor's command reading no variable: these tests must not depend on
    /// the environment they run in (the lab exports ADVISOR_REGISTRY, …).
    fn without_env(cmd: clap::Command) -> clap::Command {
        let ids: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .map(|a| a.get_id().as_str().to_owned())
            .collect();
        ids.iter()
            .fold(cmd, |c, id| c.mut_arg(id, |a| a.env(None::<&'static str>)))
            .mut_subcommands(without_env)
    }

    /// Parse `argv` with no variable set and `default` as the default file.
    fn parse_argv(argv: &[&str], default: &Path) -> Result<Cli, ParseError> {
        parse_with(
            without_env(Cli::command()),
            Vec::new(),
            argv.iter().copied(),
            default,
        )
        .map(|p| p.cli)
    }

    fn missing(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("absent/config.toml")
    }

    /// Completions and man pages never read the config file: a broken one
    /// stops every other command, not those.
    #[test]
    fn completions_and_man_pages_ignore_a_broken_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "not = [valid").unwrap();
        for argv in [
            &["advisor", "completions", "bash"][..],
            &["advisor", "man"],
            &["advisor", "--config", p.to_str().unwrap(), "man"],
        ] {
            let cli = parse_argv(argv, &p).unwrap();
            assert!(cli.global.config_used.is_none(), "{argv:?}");
        }
        assert!(matches!(
            parse_argv(&["advisor", "advise"], &p),
            Err(ParseError::Config(_))
        ));
    }

    #[test]
    fn every_key_is_read() {
        let f = parse(Path::new("c.toml"), FULL).unwrap();
        assert_eq!(
            f,
            FileConfig {
                address: Some("/run/k3s/containerd/containerd.sock".into()),
                namespace: Some("bench".into()),
                registry: Some("registry.local:5000".into()),
                hosts_dir: Some("/etc/k3s/certs.d".into()),
                stargz_metrics: Some("http://127.0.0.1:8234/metrics".into()),
                lazy_reset_cmd: Some("systemctl restart stargz-snapshotter".into()),
                plain_http: Some(true),
            }
        );
        assert_eq!(
            parse(Path::new("c.toml"), "").unwrap(),
            FileConfig::default()
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_the_file() {
        let e = parse(
            Path::new("/etc/advisor/config.toml"),
            "namespace = \"x\"\nadress = \"/a.sock\"\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        for want in [
            "config file /etc/advisor/config.toml",
            "unknown field `adress`",
            "`address`",
            "line 2",
        ] {
            assert!(msg.contains(want), "{want} missing: {msg}");
        }
    }

    #[test]
    fn bad_toml_names_the_file_line_and_column() {
        let e = parse(
            Path::new("/x/config.toml"),
            "address = \"/a.sock\"\nnamespace = \n",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("config file /x/config.toml: "), "{msg}");
        assert!(msg.contains("at line 2 column "), "{msg}");
        let e = parse(Path::new("c.toml"), "plain_http = \"yes\"\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn an_empty_value_is_an_error_naming_the_key() {
        let e = parse(Path::new("c.toml"), "registry = \" \"\n").unwrap_err();
        assert!(e.to_string().contains("`registry` is empty"), "{e}");
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error_naming_it_and_who_named_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = missing(&dir);
        let flag = load(&p, Named::Flag).unwrap_err().to_string();
        assert!(flag.contains(&p.display().to_string()), "{flag}");
        assert!(flag.contains("does not exist"), "{flag}");
        assert!(flag.contains("--config"), "{flag}");
        let env = load(&p, Named::Env).unwrap_err().to_string();
        assert!(env.contains("ADVISOR_CONFIG"), "{env}");
    }

    #[test]
    fn an_absent_default_file_is_no_config() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&missing(&dir), Named::Default).unwrap().is_none());
        let cli = parse_argv(&["advisor", "doctor"], &missing(&dir)).unwrap();
        assert_eq!(cli.global.config_used, None);
        assert_eq!(cli.global.address, Path::new(crate::cli::DEFAULT_ADDRESS));
        assert_eq!(cli.global.namespace, "advisor");
    }

    /// The bound of every whole-file input: a device is refused, not read.
    #[test]
    fn a_file_past_the_bound_is_refused() {
        let e = load(Path::new("/dev/zero"), Named::Flag).unwrap_err();
        assert!(matches!(e, Error::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn only_a_value_nobody_gave_is_the_file_s() {
        assert!(file_may_set(None));
        assert!(file_may_set(Some(ValueSource::DefaultValue)));
        assert!(!file_may_set(Some(ValueSource::EnvVariable)));
        assert!(!file_may_set(Some(ValueSource::CommandLine)));
    }

    /// The default file (injected here) fills in what no flag gave; its
    /// namespace is advisor's (chosen for it), not ctr's.
    #[test]
    fn the_default_file_sets_what_no_flag_gave() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, FULL);
        let cli = parse_argv(&["advisor", "doctor"], &p).unwrap();
        let g = &cli.global;
        assert_eq!(g.address, Path::new("/run/k3s/containerd/containerd.sock"));
        assert_eq!(g.namespace, "bench");
        assert_eq!(g.namespace_origin, NamespaceOrigin::Advisor);
        assert!(g.plain_http);
        let Command::Doctor(a) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(a.registry.as_deref(), Some("registry.local:5000"));
        assert_eq!(g.hosts_dir, Path::new("/etc/k3s/certs.d"));
        assert_eq!(
            a.stargz_metrics.as_deref(),
            Some("http://127.0.0.1:8234/metrics")
        );
        assert_eq!(
            g.config_used,
            Some(Used {
                path: p,
                keys: vec![
                    "address",
                    "namespace",
                    "hosts_dir",
                    "plain_http",
                    "registry",
                    "stargz_metrics"
                ],
            })
        );
    }

    /// Flags win over the file, before or after the subcommand.
    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            &FULL.replace("plain_http = true", "plain_http = false"),
        );
        let cli = parse_argv(
            &[
                "advisor",
                "--config",
                p.to_str().unwrap(),
                "-a",
                "/flag.sock",
                "doctor",
                "-n",
                "flag",
                "--plain-http",
                "--registry",
                "flag:1",
                "--hosts-dir",
                "/flag/certs.d",
            ],
            &missing(&dir),
        )
        .unwrap();
        let g = &cli.global;
        assert_eq!(g.address, Path::new("/flag.sock"));
        assert_eq!(g.hosts_dir, Path::new("/flag/certs.d"));
        assert_eq!(g.namespace, "flag");
        assert!(g.plain_http);
        let Command::Doctor(a) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(a.registry.as_deref(), Some("flag:1"));
        let used = g.config_used.as_ref().unwrap();
        assert_eq!(used.path, p, "--config wins over the default file");
        assert_eq!(used.keys, ["stargz_metrics"]);
    }

    /// bench and calibrate take the lazy reset command, the metrics URL and
    /// (calibrate) the registry from the file when not given.
    #[test]
    fn bench_and_calibrate_take_their_node_settings_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, FULL);
        let cli = parse_argv(
            &[
                "advisor",
                "bench",
                "--image",
                "r/i:t",
                "--snapshotter",
                "stargz",
                "--lazy-reset-cmd",
                "true",
            ],
            &p,
        )
        .unwrap();
        let Command::Bench(a) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(a.lazy_reset_cmd.as_deref(), Some("true"), "the flag wins");
        assert_eq!(
            a.stargz_metrics.as_deref(),
            Some("http://127.0.0.1:8234/metrics")
        );

        let cli = parse_argv(&["advisor", "calibrate", "--quick"], &p).unwrap();
        let Command::Calibrate(a) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(a.registry.as_deref(), Some("registry.local:5000"));
        assert_eq!(
            a.lazy_reset_cmd.as_deref(),
            Some("systemctl restart stargz-snapshotter")
        );
        assert!(cli.global.config_used.unwrap().keys.contains(&"registry"));

        // A command without those flags takes only the global ones.
        let cli = parse_argv(&["advisor", "advise"], &p).unwrap();
        assert_eq!(
            cli.global.config_used.unwrap().keys,
            ["address", "namespace", "hosts_dir", "plain_http"]
        );
    }

    #[test]
    fn the_flag_reads_the_variable_and_an_empty_one_is_unset() {
        let cmd = Cli::command();
        let a = cmd.get_arguments().find(|a| a.get_id() == "config");
        assert_eq!(
            a.and_then(|a| a.get_env()).and_then(|e| e.to_str()),
            Some(VAR)
        );
        let dir = tempfile::tempdir().unwrap();
        let lookup = |k: &str| (k == VAR).then(std::ffi::OsString::new);
        let p =
            crate::cli::env::try_parse_from(["advisor", "doctor"], lookup, &missing(&dir)).unwrap();
        assert_eq!(p.cli.global.config, None);
        assert_eq!(p.cli.global.config_used, None);
    }

    #[test]
    fn a_bad_file_is_a_config_error_not_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "namespace = [\n");
        let e = parse_argv(&["advisor", "doctor"], &p).unwrap_err();
        assert!(
            matches!(e, ParseError::Config(Error::Invalid { .. })),
            "{e:?}"
        );
        let e = parse_argv(
            &[
                "advisor",
                "--config",
                missing(&dir).to_str().unwrap(),
                "doctor",
            ],
            &p,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Config(Error::Missing {
                    named: Named::Flag,
                    ..
                })
            ),
            "{e:?}"
        );
    }
}
