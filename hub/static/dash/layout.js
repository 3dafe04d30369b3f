// Rearranging a board by dragging, in edit mode only (the Board draws no handles for viewers, and these
// handlers act only on them): drag a widget's header onto another widget to move it before or after that
// one; drag the corner handle to resize it in grid columns (1–12) and rows (1–4). Plain pointer events
// (mouse, pen and touch alike): the grid is the board's CSS grid, so a move is a change of order in
// spec.widgets and a resize a change of its w and h, saved with the dashboard like any other edit.

export const MAX_W = 12, MAX_H = 4;

// Where a drop lands: the new order of `count` widgets when `from` is dropped before or after `to`.
export function moved(count, from, to, after) {
  const order = [...Array(count).keys()];
  if (from === to) return order;
  order.splice(from, 1);
  const at = order.indexOf(to) + (after ? 1 : 0);
  order.splice(at, 0, from);
  return order;
}

// Grid cells spanned by a size in pixels: `unit` is one cell plus the gap.
export const cells = (px, unit, gap, max) => Math.min(max, Math.max(1, Math.round((px + gap) / unit)));

// board: {el, editable, reorder(order), resize(index, w, h)}
export function enableLayout(board) {
  let drag = null;
  const widgetAt = (x, y) => document.elementsFromPoint(x, y).find((e) => e.matches?.("section.widget") && board.el.contains(e));
  const clearMarks = () => { for (const e of board.el.querySelectorAll(".drop-before, .drop-after")) e.classList.remove("drop-before", "drop-after"); };

  board.el.addEventListener("pointerdown", (e) => {
    if (!board.editable || e.button !== 0) return;
    const el = e.target.closest("section.widget");
    if (!el) return;
    const handle = e.target.closest(".resize");
    if (!handle && (!e.target.closest(".widget > header") || e.target.closest("button"))) return;
    e.preventDefault();
    board.el.setPointerCapture(e.pointerId);
    const index = +el.dataset.widget;
    if (handle) {
      const css = getComputedStyle(board.el);
      const gap = parseFloat(css.columnGap) || 12;
      const colUnit = (board.el.clientWidth - gap * (MAX_W - 1)) / MAX_W + gap;
      const rowUnit = (parseFloat(css.gridAutoRows) || 240) + (parseFloat(css.rowGap) || gap);
      drag = { kind: "resize", el, index, top: el.getBoundingClientRect().top, left: el.getBoundingClientRect().left, gap,
               colUnit, rowUnit, w: null, h: null };
    } else drag = { kind: "move", el, index, target: null, after: false };
    el.classList.add("dragging");
  });

  board.el.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (drag.kind === "resize") {
      drag.w = cells(e.clientX - drag.left, drag.colUnit, drag.gap, MAX_W);
      drag.h = cells(e.clientY - drag.top, drag.rowUnit, drag.gap, MAX_H);
      drag.el.style.gridColumn = `span ${drag.w}`;
      drag.el.style.gridRow = `span ${drag.h}`;
      drag.el.dataset.size = `${drag.w}×${drag.h}`;
      return;
    }
    clearMarks();
    const over = widgetAt(e.clientX, e.clientY);
    drag.target = over && over !== drag.el ? over : null;
    if (!drag.target) return;
    const r = drag.target.getBoundingClientRect();
    drag.after = e.clientX > r.left + r.width / 2;
    drag.target.classList.add(drag.after ? "drop-after" : "drop-before");
  });

  const end = (e, commit) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    clearMarks();
    d.el.classList.remove("dragging");
    delete d.el.dataset.size;
    if (board.el.hasPointerCapture(e.pointerId)) board.el.releasePointerCapture(e.pointerId);
    if (d.kind === "resize") {
      if (commit && d.w !== null) board.resize(d.index, d.w, d.h);
      else board.resize(d.index, null, null);  // cancelled: back to the spec's size
    } else if (commit && d.target) {
      board.reorder(moved(board.widgets.length, d.index, +d.target.dataset.widget, d.after));
    }
  };
  board.el.addEventListener("pointerup", (e) => end(e, true));
  board.el.addEventListener("pointercancel", (e) => end(e, false));
}
