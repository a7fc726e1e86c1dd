//! `advisor completions SHELL`: the completion script on stdout.
use crate::cli::{Cli, CompletionsArgs};
use crate::printer::Printer;
use clap::CommandFactory;

pub fn run(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<()> {
    printer.out(&crate::report::completions::script(
        Cli::command(),
        args.shell,
    ))?;
    Ok(())
}
