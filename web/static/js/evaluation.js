// The results of the last evaluation on the test set: the confusion matrix
// and a gallery of the test images the model gets wrong.

import { formatPercent } from './format.js';

/**
 * renderConfusion draws matrix[true][predicted] as a table, the right
 * answers on the diagonal shaded by each digit's accuracy and the mistakes
 * off it shaded by their count.
 */
export function renderConfusion(root, matrix) {
  if (!matrix || !matrix.length) return;
  let total = 0;
  let maxOff = 0;
  matrix.forEach((row, t) =>
    row.forEach((n, p) => {
      total += n;
      if (t !== p) maxOff = Math.max(maxOff, n);
    }),
  );
  if (total === 0) return;

  const table = document.createElement('table');
  table.className = 'confusion-table';
  const caption = document.createElement('caption');
  caption.className = 'sr-only';
  caption.textContent = 'Rows: the true digit. Columns: the network’s answer.';
  table.append(caption);

  const thead = document.createElement('thead');
  const hr = document.createElement('tr');
  const corner = document.createElement('th');
  corner.className = 'corner';
  corner.innerHTML = '<span>answer →</span><span>true ↓</span>';
  hr.append(corner);
  for (let p = 0; p < 10; p++) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = String(p);
    hr.append(th);
  }
  const acc = document.createElement('th');
  acc.scope = 'col';
  acc.className = 'acc';
  acc.textContent = 'right';
  hr.append(acc);
  thead.append(hr);

  const tbody = document.createElement('tbody');
  matrix.forEach((row, t) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = String(t);
    tr.append(th);
    const rowTotal = row.reduce((a, b) => a + b, 0);
    row.forEach((n, p) => {
      const td = document.createElement('td');
      td.textContent = n ? String(n) : '';
      let alpha;
      if (t === p) {
        td.className = 'hit';
        alpha = rowTotal ? n / rowTotal : 0;
        td.style.setProperty('--shade', `rgba(37, 99, 235, ${(0.08 + 0.5 * alpha).toFixed(3)})`);
      } else if (n) {
        td.className = 'miss';
        alpha = maxOff ? n / maxOff : 0;
        td.style.setProperty('--shade', `rgba(220, 38, 38, ${(0.06 + 0.6 * alpha).toFixed(3)})`);
        if (alpha > 0.6) td.classList.add('strong');
      }
      td.title = `${n} test image${n === 1 ? '' : 's'} of a ${t} read as ${p}`;
      tr.append(td);
    });
    const a = document.createElement('td');
    a.className = 'acc';
    a.textContent = rowTotal ? formatPercent(row[t] / rowTotal, 0) : '–';
    tr.append(a);
    tbody.append(tr);
  });
  table.append(thead, tbody);
  root.replaceChildren(table);
}

/**
 * renderMistakes shows the misclassified test images with the true digit
 * and the answer. With onPick, each is a button that picks the image.
 */
export function renderMistakes(root, mistakes, onPick) {
  if (!mistakes) return;
  if (!mistakes.length) {
    const p = document.createElement('p');
    p.className = 'muted empty';
    p.textContent = 'None: every test image was read right.';
    root.replaceChildren(p);
    return;
  }
  const nodes = mistakes.map((m) => {
    const fig = document.createElement(onPick ? 'button' : 'figure');
    fig.className = 'mistake';
    if (onPick) {
      fig.type = 'button';
      fig.addEventListener('click', () => onPick(m.index));
    }
    const img = document.createElement('img');
    img.src = `/api/mnist/test/${m.index}.png`;
    img.width = 56;
    img.height = 56;
    img.loading = 'lazy';
    img.alt = `test image ${m.index}: a ${m.label} read as ${m.predicted}`;
    const cap = document.createElement(onPick ? 'span' : 'figcaption');
    cap.className = 'mistake-cap';
    cap.innerHTML = `<span class="truth"></span> → <b class="said"></b>`;
    cap.querySelector('.truth').textContent = String(m.label);
    cap.querySelector('.said').textContent = String(m.predicted);
    fig.title = `test image ${m.index}: a ${m.label} the network reads as ${m.predicted}`;
    fig.append(img, cap);
    return fig;
  });
  root.replaceChildren(...nodes);
}
