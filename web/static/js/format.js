// Number formatting shared by the pages, in the same style as the server's
// (web/pages.go): thousands separated by commas, accuracies in percent.

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** formatInt(1234567) is "1,234,567". */
export function formatInt(n) {
  return intFormat.format(Math.round(n));
}

/** formatPercent(0.98123) is "98.12%". */
export function formatPercent(v, digits = 2) {
  return `${(100 * v).toFixed(digits)}%`;
}

/** formatValue gives a loss or similar value 3 significant digits. */
export function formatValue(v) {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 0.001) return v.toPrecision(3);
  return v.toExponential(2);
}

/** formatEpochs(1.4271) is "1.43": a position in epochs. */
export function formatEpochs(x) {
  return x.toFixed(x < 10 ? 2 : 1);
}
