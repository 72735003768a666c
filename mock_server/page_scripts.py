"""JavaScript sources evaluated in session pages by `mock_server.actions`.

Each is one `page.evaluate` / `locator.evaluate` function: reading many elements through one
call is 40-50x faster than one Playwright handle per element. Nothing here runs Python logic.
"""

from __future__ import annotations

# Shared helpers, inlined into each function that needs them.
_HELPERS = r"""
const isVisible = (el) => {
  const r = el.getBoundingClientRect();
  if (r.width <= 0 || r.height <= 0) return false;
  const s = getComputedStyle(el);
  return s.visibility !== 'hidden' && s.visibility !== 'collapse';
};
const collapse = (s) => (s || '').replace(/\s+/g, ' ').trim();
const textOf = (el) => collapse(el instanceof HTMLElement ? el.innerText : el.textContent);
const box = (el) => {
  const r = el.getBoundingClientRect();
  return {x: r.x, y: r.y, width: r.width, height: r.height};
};
"""

# Implicit ARIA roles of common elements; an explicit role attribute wins.
_ROLE = r"""
const IMPLICIT_ROLES = {
  a: (el) => el.hasAttribute('href') ? 'link' : null, button: () => 'button',
  h1: () => 'heading', h2: () => 'heading', h3: () => 'heading', h4: () => 'heading',
  h5: () => 'heading', h6: () => 'heading', img: () => 'img', ul: () => 'list',
  ol: () => 'list', li: () => 'listitem', nav: () => 'navigation', main: () => 'main',
  header: () => 'banner', footer: () => 'contentinfo', form: () => 'form',
  table: () => 'table', tr: () => 'row', td: () => 'cell', th: () => 'columnheader',
  textarea: () => 'textbox', select: () => 'combobox', dialog: () => 'dialog',
  article: () => 'article', aside: () => 'complementary', section: () => 'region',
  input: (el) => ({checkbox: 'checkbox', radio: 'radio', button: 'button', submit: 'button',
    reset: 'button', range: 'slider', search: 'searchbox'})[el.type] || 'textbox',
};
const roleOf = (el) => {
  const explicit = el.getAttribute('role');
  if (explicit) return explicit;
  const f = IMPLICIT_ROLES[el.tagName.toLowerCase()];
  return f ? f(el) : null;
};
"""

QUERY = (
    r"""
([selector, fields, attributes, limit, visibleOnly]) => {
"""
    + _HELPERS
    + _ROLE
    + r"""
  let matches;
  try {
    matches = document.querySelectorAll(selector);
  } catch (e) {
    return {invalidSelector: String(e && e.message || e)};
  }
  const read = {
    text: textOf,
    html: (el) => el.outerHTML,
    href: (el) => (typeof el.href === 'string' && el.href) ? el.href : el.getAttribute('href'),
    src: (el) => (typeof el.src === 'string' && el.src) ? el.src : el.getAttribute('src'),
    alt: (el) => el.getAttribute('alt'),
    title: (el) => el.getAttribute('title'),
    value: (el) => ('value' in el && typeof el.value === 'string')
      ? el.value : el.getAttribute('value'),
    name: (el) => el.getAttribute('name'),
    id: (el) => el.id || null,
    className: (el) => el.getAttribute('class') || '',
    tag: (el) => el.tagName.toLowerCase(),
    role: roleOf,
    ariaLabel: (el) => el.getAttribute('aria-label'),
    visible: isVisible,
    bbox: box,
  };
  let total = 0;
  const elements = [];
  for (const el of matches) {
    if (visibleOnly && !isVisible(el)) continue;
    total++;
    if (elements.length >= limit) continue;
    const item = {};
    for (const f of fields) item[f] = read[f](el);
    if (attributes.length) {
      const attrs = {};
      for (const name of attributes) attrs[name] = el.getAttribute(name);
      item.attributes = attrs;
    }
    elements.push(item);
  }
  return {total, elements};
}
"""
)

# Diagnostics of the element a click/hover/fill targets (OAS GotoActionResponse fields).
DESCRIBE = (
    r"""
(el, scroll) => {
"""
    + _HELPERS
    + r"""
  const KEEP = new Set(['id', 'class', 'href', 'name', 'type', 'role', 'aria-label', 'title',
    'value', 'placeholder', 'src', 'alt']);
  const attributes = {};
  let kept = 0;
  for (const a of el.attributes) {
    if (kept >= 20) break;
    if (KEEP.has(a.name) || a.name.startsWith('data-')) { attributes[a.name] = a.value; kept++; }
  }
  if (scroll) {
    const r = el.getBoundingClientRect();
    if (r.bottom <= 0 || r.right <= 0 || r.top >= innerHeight || r.left >= innerWidth) {
      el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
    }
  }
  const text = textOf(el);
  return {
    tagName: el.tagName.toLowerCase(),
    elementText: text.length > 200 ? text.slice(0, 200) + '\u2026' : text,
    attributes,
    visible: isVisible(el),
    boundingBox: box(el),
  };
}
"""
)

# Scroll the window (`el` null) or inside an element; returns the resulting scroll offsets.
SCROLL = r"""
(el, [mode, x, y]) => {
  if (mode === 'into_view') {
    el.scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});
  } else if (mode === 'to') {
    (el || window).scrollTo({left: x, top: y, behavior: 'instant'});
  } else {
    (el || window).scrollBy({left: x, top: y, behavior: 'instant'});
  }
  const out = {scrollX: window.scrollX, scrollY: window.scrollY};
  if (el) { out.elementScrollLeft = el.scrollLeft; out.elementScrollTop = el.scrollTop; }
  return out;
}
"""

SCROLL_WINDOW = "(args) => (" + SCROLL.strip() + ")(null, args)"

# The readable text of the page as Chromium renders it (innerText skips scripts, styles and
# hidden elements and puts block elements on their own lines).
READABLE_TEXT = "() => document.body ? document.body.innerText : document.documentElement.innerText"

# Resolves after the next two animation frames: the compositor has produced a frame by then.
NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r())))"
