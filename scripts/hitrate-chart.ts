/**
 * Draws docs/eviction-hitrate.svg from bench/results/hitrate.json (written by bench/hitrate.ts):
 * one group of bars per trace and capacity — LRU, W-TinyLFU, optimal.
 *
 *   npx tsx scripts/hitrate-chart.ts
 *
 * Plain SVG written by hand, so the chart needs no dependency and diffs readably.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

interface Row {
  readonly trace: string
  readonly capacity: number
  readonly lru: number
  readonly wtinylfu: number
  readonly optimal: number
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const input = join(repoRoot, "bench", "results", "hitrate.json")
const output = join(repoRoot, "docs", "eviction-hitrate.svg")

const readRows = (): ReadonlyArray<Row> => {
  let text: string
  try {
    text = readFileSync(input, "utf8")
  } catch {
    console.error(`${input} not found: run \`npx tsx bench/hitrate.ts\` first.`)
    process.exit(1)
  }
  const parsed = JSON.parse(text) as { rows?: ReadonlyArray<Row> }
  if (!Array.isArray(parsed.rows) || parsed.rows.length === 0) {
    console.error(`${input} holds no rows.`)
    process.exit(1)
  }
  return parsed.rows
}

const escape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const series = [
  { key: "lru", label: "LRU (lru-cache)", fill: "#9aa0a6" },
  { key: "wtinylfu", label: "W-TinyLFU", fill: "#1a73e8" },
  { key: "optimal", label: "Optimal (Belady, offline)", fill: "#34a853" }
] as const

const render = (rows: ReadonlyArray<Row>): string => {
  const bar = 16
  const gap = 3
  const groupGap = 26
  const groupWidth = series.length * bar + (series.length - 1) * gap
  const left = 56
  const right = 16
  const top = 56
  const plotHeight = 300
  const bottom = 64
  const width = left + rows.length * groupWidth + (rows.length - 1) * groupGap + right + groupGap
  const height = top + plotHeight + bottom
  const y = (rate: number) => top + plotHeight - rate * plotHeight
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="11">`
  )
  out.push(`<title>Hit rate by trace and capacity: LRU, W-TinyLFU and the offline optimum</title>`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(
    `<text x="${left}" y="20" font-size="14" font-weight="600" fill="#202124">Hit rate (%) by trace and cache capacity</text>`
  )

  // Legend.
  let lx = left
  for (const s of series) {
    out.push(`<rect x="${lx}" y="30" width="11" height="11" fill="${s.fill}"/>`)
    out.push(`<text x="${lx + 15}" y="39.5" fill="#3c4043">${escape(s.label)}</text>`)
    lx += 15 + s.label.length * 6.2 + 18
  }

  // Grid and axis.
  for (let p = 0; p <= 100; p += 20) {
    const gy = y(p / 100)
    out.push(
      `<line x1="${left}" y1="${gy}" x2="${width - right}" y2="${gy}" stroke="${p === 0 ? "#5f6368" : "#e8eaed"}"/>`
    )
    out.push(`<text x="${left - 6}" y="${gy + 3.5}" text-anchor="end" fill="#5f6368">${p}</text>`)
  }

  rows.forEach((row, i) => {
    const gx = left + groupGap / 2 + i * (groupWidth + groupGap)
    series.forEach((s, j) => {
      const rate = row[s.key]
      const x = gx + j * (bar + gap)
      const h = Math.max(0, rate * plotHeight)
      out.push(
        `<rect x="${x}" y="${(y(rate)).toFixed(1)}" width="${bar}" height="${h.toFixed(1)}" fill="${s.fill}">` +
          `<title>${escape(`${row.trace} @ ${row.capacity}: ${s.label} ${(rate * 100).toFixed(2)} %`)}</title></rect>`
      )
      out.push(
        `<text x="${x + bar / 2}" y="${
          (y(rate) - 3).toFixed(1)
        }" text-anchor="middle" font-size="8.5" fill="#3c4043">` +
          `${Math.round(rate * 100)}</text>`
      )
    })
    const cx = gx + groupWidth / 2
    out.push(
      `<text x="${cx}" y="${top + plotHeight + 16}" text-anchor="middle" font-weight="600" fill="#202124">${
        escape(row.trace)
      }</text>`
    )
    out.push(
      `<text x="${cx}" y="${top + plotHeight + 30}" text-anchor="middle" fill="#5f6368">${
        row.capacity.toLocaleString("en-US")
      }</text>`
    )
  })
  out.push(
    `<text x="${left}" y="${height - 12}" fill="#5f6368">Capacity in entries under each group. ` +
      `Real traces: OLTP (ARC), gli and loop (LIRS); zipf and zipf+scan are synthetic.</text>`
  )
  out.push(`</svg>`)
  return out.join("\n") + "\n"
}

writeFileSync(output, render(readRows()))
console.log(`wrote ${output}`)
