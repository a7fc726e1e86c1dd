//! The human form of every command's typed result: tables (comfy-table),
//! text and the SVG plot, one file per command. Rendering only: values arrive
//! computed, every function returns a `String`, and nothing here prints (the
//! command hands the text to the one `Printer`).
use comfy_table::{ContentArrangement, Table, presets};

/// A table in advisor's house style with the given header.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(
            header
                .into_iter()
                .map(Into::into)
                .collect::<Vec<comfy_table::Cell>>(),
        );
    t
}

pub mod advise;
pub mod bench;
pub mod bench_export;
pub mod bench_plot;
pub mod calibrate;
pub mod calibrate_plot;
pub mod completions;
pub mod doctor;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod image;
pub mod man;
pub mod plan;
pub mod plot;
pub mod probe;
pub mod trace;

/// `value [low, high]` with a unit-aware time format.
pub fn interval_s(e: &crate::units::Estimate) -> String {
    use crate::units::Seconds;
    if e.high - e.low <= 1e-12 {
        return Seconds(e.value).to_string();
    }
    format!(
        "{} [{} – {}]",
        Seconds(e.value),
        Seconds(e.low),
        Seconds(e.high)
    )
}
