//! The README's plot: cumulative context tokens per round trip, tools mode against code mode.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::tokens::ScenarioReport;

fn running_sum(per_turn: &[usize]) -> Vec<(usize, usize)> {
    let mut sum = 0;
    per_turn
        .iter()
        .enumerate()
        .map(|(i, t)| {
            sum += t;
            (i + 1, sum)
        })
        .collect()
}

/// Writes an SVG of one scenario's cumulative context tokens after each model turn.
pub fn cumulative(path: &Path, r: &ScenarioReport) -> anyhow::Result<()> {
    let tools = running_sum(&r.tools.context_per_turn);
    let code = running_sum(&r.code.context_per_turn);
    let max_x = tools.len().max(code.len());
    let max_y = tools.iter().chain(&code).map(|p| p.1).max().unwrap_or(1);
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("cannot draw {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: cumulative context tokens (o200k_base)", r.name),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(1usize..max_x, 0usize..max_y + max_y / 10)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("model turn (each after one more tool call)")
        .y_desc("tokens read so far")
        .x_labels(max_x)
        .draw()
        .map_err(e)?;
    for (points, label, color) in [
        (
            &tools,
            format!("tools mode ({} calls)", r.tools.round_trips),
            RED,
        ),
        (
            &code,
            format!("code mode ({} call)", r.code.round_trips),
            BLUE,
        ),
    ] {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
