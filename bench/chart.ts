/**
 * An SVG chart of throughput by pipeline depth (requests in flight per connection), sipdir
 * against Redis: grouped bars, one group per depth. `bench/compare.ts --chart FILE` draws it.
 *
 * @module
 */

/** One measured pipeline depth. */
export interface DepthResult {
  /** Requests in flight per connection. */
  depth: number;
  /** sipdir answers per second (median of rounds). */
  sipdir: number;
  /** Redis GET replies per second (median of rounds). */
  redis: number;
}

/** What the chart shows and says about its run. */
export interface ChartData {
  /** Rows, by increasing depth. */
  results: DepthResult[];
  /** The title: what was measured. */
  title: string;
  /** Subtitle: machine, date, data size, client. */
  caption: string;
}

const WIDTH = 720;
const HEIGHT = 400;
const MARGIN = { top: 56, right: 20, bottom: 56, left: 84 };
const COLORS = { sipdir: "#1f77b4", redis: "#d62728" };

/**
 * Renders grouped bars, one group per depth, with a ratio label over each
 * group.
 *
 * @example
 * ```ts
 * import { renderDepthChart } from "./chart.ts";
 * const svg = renderDepthChart({
 *   results: [{ depth: 1, sipdir: 100_000, redis: 110_000 }],
 *   title: "Lookups per second by requests in flight",
 *   caption: "example",
 * });
 * ```
 */
export function renderDepthChart(data: ChartData): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const max = niceMax(Math.max(...data.results.flatMap((r) => [r.sipdir, r.redis])));
  // Coordinates to a hundredth of a pixel: more is noise in the file.
  const y = (v: number) => round(MARGIN.top + plotH - (v / max) * plotH);
  const group = plotW / data.results.length;
  const bar = round(Math.min(28, group / 3));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${
      escape(data.title)
    }</text>`,
    `<text x="${WIDTH / 2}" y="40" text-anchor="middle" fill="#555">${escape(data.caption)}</text>`,
  );
  for (let i = 0; i <= 5; i++) {
    const v = (max / 5) * i;
    parts.push(
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v)}" y2="${
        y(v)
      }" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 8}" y="${y(v) + 4}" text-anchor="end">${formatOps(v)}</text>`,
    );
  }
  data.results.forEach((r, i) => {
    const cx = round(MARGIN.left + group * i + group / 2);
    for (const [k, name] of [[-1, "sipdir"], [0, "redis"]] as const) {
      const value = r[name];
      parts.push(
        `<rect x="${round(cx + k * bar)}" y="${y(value)}" width="${bar}" height="${
          round(MARGIN.top + plotH - y(value))
        }" fill="${COLORS[name]}"><title>${name} depth ${r.depth}: ${
          Math.round(value)
        } ops/s</title></rect>`,
      );
    }
    const ratio = r.redis > 0 ? (r.sipdir / r.redis).toFixed(2) : "–";
    parts.push(
      `<text x="${cx}" y="${
        y(Math.max(r.sipdir, r.redis)) - 6
      }" text-anchor="middle" fill="#333">×${ratio}</text>`,
      `<text x="${cx}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${r.depth}</text>`,
    );
  });
  parts.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${
      HEIGHT - 14
    }" text-anchor="middle">requests in flight per connection (pipeline depth); ×: sipdir ÷ Redis</text>`,
    `<text transform="translate(18 ${
      MARGIN.top + plotH / 2
    }) rotate(-90)" text-anchor="middle">answers per second</text>`,
    `<rect x="${
      MARGIN.left + 10
    }" y="${MARGIN.top}" width="12" height="12" fill="${COLORS.sipdir}"/>`,
    `<text x="${MARGIN.left + 28}" y="${MARGIN.top + 10}">sipdir</text>`,
    `<rect x="${
      MARGIN.left + 80
    }" y="${MARGIN.top}" width="12" height="12" fill="${COLORS.redis}"/>`,
    `<text x="${MARGIN.left + 98}" y="${MARGIN.top + 10}">Redis (GET)</text>`,
    `</svg>`,
  );
  return parts.join("\n") + "\n";
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

function niceMax(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(Math.max(v, 1)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (v <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function formatOps(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${Math.round(v / 1e3)}k` : `${v}`;
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}
