//! Inputs of the snapshot tests: the bundled example (`advise` with no
//! arguments) computed the way the commands compute it, and a skeleton of an
//! SVG that keeps its structure but not its coordinates.
use crate::commands::advise::example;
use crate::estargz::table::ImageFiles;
use crate::predict::workload::Workload;
use crate::predict::{PredictOptions, Prediction, predict};
use crate::profile::Profile;
use crate::trace::format::TraceReader;
use crate::units::Bytes;

/// The bundled example's file table.
pub fn example_image() -> ImageFiles {
    serde_json::from_str(example::FILES).expect("the bundled file table")
}

/// A reader over the bundled example's trace.
pub fn example_trace() -> TraceReader<std::io::Cursor<&'static [u8]>> {
    TraceReader::new(
        std::io::Cursor::new(example::TRACE.as_bytes()),
        example::TRACE_NAME,
    )
    .expect("the bundled trace")
}

/// The prediction `advise` makes for the bundled example with the bundled
/// profile: `gzip_bytes` as `advise` with no arguments (`Some`) or with
/// `--files`/`--trace` (`None`) passes it.
pub fn example_prediction(gzip_bytes: Option<Bytes>) -> Prediction {
    example_prediction_on(gzip_bytes, None)
}

/// The example predicted for a network path (`advise --rtt … --bandwidth …`).
pub fn example_prediction_on(
    gzip_bytes: Option<Bytes>,
    link: Option<crate::simulate::network::Link>,
) -> Prediction {
    let image = example_image();
    let profile = Profile::default_profile().expect("the bundled profile");
    let options = PredictOptions {
        gzip_bytes,
        fetch: profile.fetch_config(),
        link,
        ..Default::default()
    };
    let w = Workload::from_trace(&image, &mut example_trace()).expect("the bundled workload");
    predict(&image, &w, &profile, &options)
}

/// One line per element (`name attr attr …`, the colours kept), the text of
/// `<text>` elements quoted below it, runs of identical lines folded into
/// `×N`: the structure of a plot without its coordinates.
pub fn svg_skeleton(svg: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let text = rest[..start].trim();
        if !text.is_empty() {
            lines.push(format!("  {text:?}"));
        }
        let end = start + rest[start..].find('>').expect("a closed tag");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if !tag.starts_with('/') {
            lines.push(element_line(tag.trim_end_matches('/')));
        }
    }
    fold_runs(&lines)
}

/// `name attr attr …` of a start tag; fill and stroke keep their values.
fn element_line(tag: &str) -> String {
    let name = tag.split_whitespace().next().unwrap_or("");
    let mut line = name.to_string();
    // Outside quotes: ` key=`; inside: the value of the key before it.
    let parts: Vec<&str> = tag[name.len()..].split('"').collect();
    for pair in parts.chunks(2) {
        let Some(key) = pair[0].trim().strip_suffix('=') else {
            continue;
        };
        match (key, pair.get(1)) {
            ("fill" | "stroke", Some(v)) => line.push_str(&format!(" {key}={v}")),
            _ => line.push_str(&format!(" {key}")),
        }
    }
    line
}

fn fold_runs(lines: &[String]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let n = lines[i..].iter().take_while(|l| **l == lines[i]).count();
        out.push_str(&lines[i]);
        if n > 1 {
            out.push_str(&format!(" ×{n}"));
        }
        out.push('\n');
        i += n;
    }
    out
}

/// The attributes of every `<circle>` of an SVG (a plot's dots), in order.
pub fn svg_circles(svg: &str) -> Vec<&str> {
    svg.split("<circle")
        .skip(1)
        .map(|c| c.find("/>").map_or(c, |end| &c[..end]))
        .collect()
}
