//! One module per subcommand. Each takes its resolved settings and the
//! [`Printer`](crate::printer::Printer), computes first, renders after.
pub mod advise;
pub mod bench;
pub mod doctor;
pub mod image;
pub mod trace;
