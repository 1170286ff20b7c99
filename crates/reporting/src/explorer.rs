//! `results/<experiment>/index.html`: one self-contained page (no server, no network, opens from `file://`) with
//! the tables, the figures and a latent explorer. Per (variant, labels) the report lays the generator's images out
//! in one sprite sheet (rows: noise sample × semi-supervised code value; columns: every other code moved one at a
//! time over its values), and the page shows the cell that the controls pick: the semi-supervised value, a slider
//! per continuous code, a selector per unsupervised categorical code, the noise sample. The state lives in the URL
//! (`#run=ss-infogan-n132&digit=3&z=1&c1=0.5`), so a view can be shared, and the page marks itself
//! `data-explorer="ready"` (or `data-error="…"`) on `<body>` for a browser test.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::error::ReportError;
use crate::inputs::ReportInputs;
use crate::verdict::ClaimResult;
use crate::written::{write_file, Written};
use ssinfogan_plan::share::TraversalSheet;

/// Displayed size of a generated pixel.
const SCALE: usize = 8;

fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A Markdown table (as `tables::markdown` writes it) as an HTML table.
fn markdown_table(md: &str) -> String {
    let mut html = String::from("<table>\n");
    for (i, line) in md.lines().filter(|l| l.starts_with('|')).enumerate() {
        if i == 1 {
            continue; // the |---| rule
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").map(str::trim).collect();
        let tag = if i == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for cell in cells {
            let _ = write!(html, "<{tag}>{}</{tag}>", html_escape(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// The page's data about one sheet, as a JS object literal (serde_json writes it).
fn sheet_json(sheet: &TraversalSheet, sprite: &str) -> serde_json::Value {
    let mut offset = 0;
    let axes: Vec<serde_json::Value> = sheet
        .axes
        .iter()
        .map(|a| {
            let value = serde_json::json!({
                "name": a.name, "continuous": a.continuous, "values": a.values, "base": a.base, "offset": offset,
            });
            offset += a.values.len();
            value
        })
        .collect();
    serde_json::json!({
        "id": sheet.id(),
        "title": format!("{} ({} labels), seed {}", sheet.variant, sheet.n_labelled, sheet.seed),
        "code": sheet.code_name,
        "k": sheet.code_values,
        "n": sheet.noise_samples,
        "w": sheet.width,
        "h": sheet.height,
        "columns": sheet.columns(),
        "axes": axes,
        "sprite": sprite,
        "morph": cell_morphometry(sheet),
    })
}

/// Slant (degrees, positive leaning right) and stroke thickness (pixels) of every cell of a sheet of 28 × 28 digits,
/// row-major like the sprite, rounded to what the page shows (`null` for a cell without a digit); `null` for other
/// images.
fn cell_morphometry(sheet: &TraversalSheet) -> serde_json::Value {
    let pixels = sheet.height * sheet.width;
    if (sheet.channels, sheet.height, sheet.width) != (1, 28, 28) || !sheet.pixels.len().is_multiple_of(pixels) {
        return serde_json::Value::Null;
    }
    let bytes = ssinfogan_morphometry::to_bytes(&sheet.pixels);
    let cells: Vec<serde_json::Value> = ssinfogan_morphometry::measure_all(&bytes, sheet.height, sheet.width)
        .into_iter()
        .map(|m| match m {
            Some(m) => serde_json::json!([m.slant.to_degrees().round(), (m.thickness * 10.0).round() / 10.0]),
            None => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(cells)
}

/// Writes `index.html` under the results directory.
/// What the page shows besides the runs' own files.
pub struct Page<'a> {
    /// The main table, as REPORT.md has it.
    pub tables_md: &'a str,
    pub ablations_md: Option<&'a str>,
    pub claims: &'a [ClaimResult],
    /// Unfinished runs drawn in the figures (`report --include-running`), with their last logged iteration.
    pub running: &'a [(String, i64)],
}

pub fn write_page(inputs: &ReportInputs, page: &Page, written: &mut Written) -> Result<(), ReportError> {
    let Page { tables_md, ablations_md, claims, running } = *page;
    let path = inputs.results_dir.join("index.html");
    let mut sheets = Vec::new();
    for sheet in &inputs.traversals {
        let png = crate::traversal::png(sheet)
            .map_err(|e| ReportError::Input(format!("explorer sheet of {}: {e}", sheet.id())))?;
        sheets.push(sheet_json(sheet, &data_uri("image/png", &png)));
    }
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}: ss-InfoGAN against InfoGAN</h1>\n<p>{} — {} training and {} test images{}. {}. \
         <a href=\"REPORT.md\">REPORT.md</a> has the claims in full.</p>",
        html_escape(&inputs.experiment),
        html_escape(&inputs.data.origin),
        inputs.data.train_size,
        inputs.data.test_size,
        if inputs.data.full_dataset { "" } else { " (a subset of the published dataset)" },
        html_escape(&inputs.schedule)
    );
    if !running.is_empty() {
        let note = crate::aggregate::running_note(running).replace("**", "").replace('`', "");
        let _ = writeln!(body, "<p class=\"running\">{}</p>", html_escape(&note));
    }
    if !sheets.is_empty() {
        body.push_str(
            "<section id=\"explorer\"><h2>Latent explorer</h2>\n<p>Pick the semi-supervised code's value, move one \
             other code at a time (the others stay at their centre, or at the noise sample's draw for a categorical \
             code), and step through noise samples. The view is in the address: copy it to share it.</p>\n\
             <div class=\"explorer\"><div id=\"view\" role=\"img\"></div><div id=\"controls\"></div>\
             <p id=\"morph\"></p></div></section>\n",
        );
    }
    if !claims.is_empty() {
        body.push_str("<h2>The paper's claims</h2>\n<table><tr><th>#</th><th>claim</th><th>verdict</th></tr>\n");
        for (i, c) in claims.iter().enumerate() {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                html_escape(c.claim),
                html_escape(&c.verdict.to_string().replace("**", ""))
            );
        }
        body.push_str("</table>\n");
    }
    let _ = write!(body, "<h2>Results</h2>\n{}", markdown_table(tables_md));
    if let Some(md) = ablations_md {
        let _ = write!(body, "<h2>Ablations</h2>\n{}", markdown_table(md));
    }
    let figures_dir = inputs.results_dir.join("figures");
    let mut figures: Vec<_> = written
        .files
        .iter()
        .filter(|f| f.starts_with(&figures_dir) && f.extension().is_some_and(|e| e == "png"))
        .collect();
    figures.sort();
    if !figures.is_empty() {
        body.push_str("<h2>Figures</h2>\n");
        for figure in figures {
            let bytes = std::fs::read(figure).map_err(|e| ReportError::io(figure, e))?;
            let name = figure.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let _ = writeln!(
                body,
                "<figure><img alt=\"{0}\" src=\"{1}\"><figcaption>figures/{0}</figcaption></figure>",
                html_escape(&name),
                data_uri("image/png", &bytes)
            );
        }
    }
    let progress: Vec<_> =
        inputs.runs.iter().filter(|r| r.dir.join("samples").join("progress.gif").is_file()).collect();
    if !progress.is_empty() {
        body.push_str("<h2>Training progress</h2>\n<ul>\n");
        for run in progress {
            let relative = run.dir.strip_prefix(&inputs.results_dir).unwrap_or(&run.dir).join("samples/progress.gif");
            let _ = writeln!(
                body,
                "<li><a href=\"{0}\">{1}, seed {2}</a></li>",
                html_escape(&relative.display().to_string()),
                html_escape(&run.group()),
                run.seed
            );
        }
        body.push_str("</ul>\n");
    }
    let data = serde_json::to_string(&sheets).map_err(|e| ReportError::io(&path, e))?;
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n{body}<script>\nconst SHEETS = {data};\nconst SCALE = {SCALE};\n\
         {SCRIPT}</script>\n</body>\n</html>\n",
        title = html_escape(&format!("{}: ss-InfoGAN report", inputs.experiment)),
        data = data.replace("</", "<\\/"),
    );
    write_file(&path, html.as_bytes(), written)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px;color:#222}\
table{border-collapse:collapse;margin:8px 0 24px;font-size:14px}td,th{border-bottom:1px solid #ddd;padding:4px 8px;\
text-align:left}figure{display:inline-block;margin:8px}figure img{max-width:640px}\
.explorer{display:flex;gap:24px;align-items:flex-start}#view{image-rendering:pixelated;background-repeat:no-repeat;\
border:1px solid #ccc;flex:none}#controls label{display:block;margin:6px 0}#controls input[type=range]{width:260px;\
vertical-align:middle}";

/// The explorer: reads the state from the URL, draws the controls, shows the sheet's cell, writes the state back.
const SCRIPT: &str = r#"window.addEventListener('error', e => { document.body.dataset.error = String(e.message); });
(function () {
  if (!SHEETS.length) { document.body.dataset.explorer = 'ready'; return; }
  const view = document.getElementById('view'), controls = document.getElementById('controls');
  const nearest = (values, v) => values.reduce((b, x, i) => Math.abs(x - v) < Math.abs(values[b] - v) ? i : b, 0);
  // The state: a sheet, the semi-supervised value, a noise sample, and at most one moved axis with its step.
  function parse() {
    const p = new URLSearchParams(location.hash.slice(1));
    const sheet = SHEETS.find(s => s.id === p.get('run')) || SHEETS[0];
    const clamp = (v, n) => Math.min(Math.max(parseInt(v, 10) || 0, 0), n - 1);
    const state = { sheet, c: clamp(p.get(sheet.code), sheet.k), z: clamp(p.get('z'), sheet.n), axis: null, step: 0 };
    for (const a of sheet.axes) {
      if (!p.has(a.name)) continue;
      const step = nearest(a.values, parseFloat(p.get(a.name)));
      if (step !== a.base[state.z]) { state.axis = a.name; state.step = step; break; }
    }
    return state;
  }
  function hash(s) {
    const p = new URLSearchParams();
    p.set('run', s.sheet.id); p.set(s.sheet.code, s.c); p.set('z', s.z);
    const a = s.sheet.axes.find(a => a.name === s.axis);
    if (a) p.set(a.name, a.values[s.step]);
    return '#' + p.toString();
  }
  function render(s) {
    const sh = s.sheet, a = sh.axes.find(a => a.name === s.axis);
    const row = s.z * sh.k + s.c, col = a ? a.offset + s.step : (sh.axes.length ? sh.axes[0].offset + sh.axes[0].base[s.z] : 0);
    view.style.width = sh.w * SCALE + 'px'; view.style.height = sh.h * SCALE + 'px';
    view.style.backgroundImage = 'url(' + sh.sprite + ')';
    view.style.backgroundSize = sh.columns * sh.w * SCALE + 'px ' + sh.n * sh.k * sh.h * SCALE + 'px';
    view.style.backgroundPosition = -col * sh.w * SCALE + 'px ' + -row * sh.h * SCALE + 'px';
    view.setAttribute('aria-label', sh.title + ': ' + hash(s).slice(1));
    view.dataset.row = row; view.dataset.column = col;
    // The digit on screen, measured (Morpho-MNIST's slant and thickness), where the sheet holds digits.
    const m = sh.morph && sh.morph[row * sh.columns + col];
    document.getElementById('morph').textContent = m ? 'measured: slant ' + m[0] + '°, stroke thickness ' + m[1] + ' px' : '';
    if (location.hash !== hash(s)) history.replaceState(null, '', hash(s));
  }
  // The view follows a code's control as it moves (the address is replaced, not pushed, and the controls stay);
  // the run, the code value and the noise sample go through the address (history, back button) and redraw all.
  let current = null;
  function moveAxis(a, step) {
    current = Object.assign({}, current, { axis: a.name, step });
    for (const b of current.sheet.axes) {
      const at = b.name === current.axis ? current.step : b.base[current.z];
      const input = document.getElementById('axis-' + b.name);
      if (String(input.value) !== String(at)) input.value = at;
      document.getElementById('val-' + b.name).textContent = b.values[at];
    }
    render(current);
  }
  function build(s) {
    const sh = s.sheet;
    let html = '<label>run <select id="run">' + SHEETS.map(x => '<option value="' + x.id + '"' + (x === sh ? ' selected' : '') + '>' + x.title + '</option>').join('') + '</select></label>';
    html += '<label>' + sh.code + ' <select id="code">' + Array.from({ length: sh.k }, (_, i) => '<option' + (i === s.c ? ' selected' : '') + '>' + i + '</option>').join('') + '</select></label>';
    html += '<label>noise sample <button id="prev">&larr;</button> <span id="zv">' + (s.z + 1) + ' / ' + sh.n + '</span> <button id="next">&rarr;</button></label>';
    for (const a of sh.axes) {
      const step = a.name === s.axis ? s.step : a.base[s.z];
      if (a.continuous) {
        html += '<label>' + a.name + ' <input type="range" id="axis-' + a.name + '" min="0" max="' + (a.values.length - 1) + '" value="' + step + '"> <span id="val-' + a.name + '">' + a.values[step] + '</span></label>';
      } else {
        html += '<label>' + a.name + ' (categorical) <select id="axis-' + a.name + '">' + a.values.map((v, i) => '<option value="' + i + '"' + (i === step ? ' selected' : '') + '>' + v + '</option>').join('') + '</select> <span id="val-' + a.name + '" hidden>' + a.values[step] + '</span></label>';
      }
    }
    controls.innerHTML = html;
    const go = t => { location.hash = hash(t); };
    document.getElementById('run').onchange = e => go({ sheet: SHEETS.find(x => x.id === e.target.value), c: 0, z: 0, axis: null, step: 0 });
    document.getElementById('code').onchange = e => go(Object.assign({}, current, { c: parseInt(e.target.value, 10) }));
    document.getElementById('prev').onclick = () => go(Object.assign({}, current, { z: (current.z + sh.n - 1) % sh.n, axis: null }));
    document.getElementById('next').onclick = () => go(Object.assign({}, current, { z: (current.z + 1) % sh.n, axis: null }));
    for (const a of sh.axes) {
      const input = document.getElementById('axis-' + a.name);
      input[a.continuous ? 'oninput' : 'onchange'] = e => moveAxis(a, parseInt(e.target.value, 10));
    }
  }
  function update() { current = parse(); build(current); render(current); }
  window.addEventListener('hashchange', update);
  update();
  document.body.dataset.explorer = 'ready';
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_become_html_rows_with_escaped_cells() {
        let html = markdown_table("| a | b<c |\n|---|---|\n| 1 & 2 | ± 3 |\n");
        assert_eq!(
            html,
            "<table>\n<tr><th>a</th><th>b&lt;c</th></tr>\n<tr><td>1 &amp; 2</td><td>± 3</td></tr>\n</table>\n"
        );
    }

    #[test]
    fn every_digit_of_a_sheet_is_measured_in_sprite_order() {
        // Two cells: a blank one, then an upright bar 3 pixels wide; then a sheet of colour images.
        let mut pixels = vec![0f32; 2 * 784];
        for r in 4..24 {
            for c in 13..16 {
                pixels[784 + r * 28 + c] = 1.0;
            }
        }
        let axis = ssinfogan_plan::share::TraversalAxis {
            name: "c1".into(),
            continuous: true,
            values: vec![0.0, 1.0],
            base: vec![0],
        };
        let mut sheet = TraversalSheet {
            variant: "ss-infogan".into(),
            n_labelled: 20,
            seed: 1,
            code_name: "digit".into(),
            code_values: 1,
            noise_samples: 1,
            axes: vec![axis],
            channels: 1,
            height: 28,
            width: 28,
            pixels,
        };
        let cells = cell_morphometry(&sheet);
        assert_eq!(cells[0], serde_json::Value::Null, "a blank cell has no digit");
        assert_eq!(cells[1][0], serde_json::json!(0.0), "an upright bar has no slant: {cells}");
        let thickness = cells[1][1].as_f64().unwrap();
        assert!((thickness - 3.0).abs() < 0.4, "a bar 3 pixels wide: {cells}");
        sheet.channels = 3;
        sheet.pixels = vec![0.5; 2 * 3 * 784];
        assert_eq!(cell_morphometry(&sheet), serde_json::Value::Null);
    }
}
