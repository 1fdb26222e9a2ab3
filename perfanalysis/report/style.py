"""The page's CSS, inlined into every report (system fonts only: nothing is fetched)."""

STYLE = """
:root { --ink: #1f2933; --muted: #61707f; --line: #d9dee3; --accent: #2f5d8a; --over: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f6f7f9;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 10px; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--accent); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 10px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; font-weight: 600; }
p.subject { color: var(--muted); margin: 0 0 6px; }
.hosts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 10px 18px; }
figure.chart { margin: 0; padding: 8px 10px 6px; border: 1px solid var(--line); border-radius: 6px;
  break-inside: avoid; page-break-inside: avoid; background: #fff; }
figcaption { font-weight: 600; font-size: 13px; margin-bottom: 2px; }
figcaption .host, li .host { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 3px;
  background: #e8eef5; color: var(--accent); font-weight: 600; }
svg.chart-svg { display: block; width: 100%; height: auto; }
svg .tick { font-size: 10.5px; fill: var(--muted); font-family: inherit; }
ul.legend { list-style: none; margin: 2px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 2px 12px;
  font-size: 12px; color: var(--muted); }
ul.legend i { display: inline-block; width: 14px; height: 4px; border-radius: 2px; margin-right: 5px;
  vertical-align: middle; }
ul.legend i.line { width: 26px; height: 3px; border-radius: 0; }
ul.legend i { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
ul.legend i.gap { background: #e3e3e3; height: 10px; }
p.warning { margin: 6px 0 10px; padding: 6px 10px; border-left: 4px solid var(--over);
  background: #fdf0ef; }
p.note { margin: 4px 0 0; font-size: 12px; color: var(--muted); font-style: italic; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f1f4f7; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.over { color: var(--over); font-weight: 700; }
table.stats td.series { font-weight: 600; }
p.findings { font-weight: 600; }
ul.recs { padding-left: 18px; } ul.recs li { margin: 6px 0; }
ul.method li { margin: 4px 0; color: #333; }
code { font-size: 12.5px; background: #f1f4f7; padding: 0 3px; border-radius: 3px; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { background: #fff; font-size: 11px; } main { max-width: none; padding: 0; }
  nav { display: none; } h2 { break-after: avoid; } h3 { break-after: avoid; }
  .hosts { grid-template-columns: repeat(2, 1fr); }
  section { break-before: page; } section#summary { break-before: auto; }
  tr { break-inside: avoid; }
}
"""
