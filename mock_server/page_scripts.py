"""JavaScript sources evaluated in pages by `mock_server.actions` and `mock_server.oneshot`.

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

# DESCRIBE of the first of a locator's matches (`evaluate_all`, which never waits), null if none.
DESCRIBE_FIRST = "(els, scroll) => els.length ? (" + DESCRIBE.strip() + ")(els[0], scroll) : null"

# The options of a <select> (value and label each), to name them when a `select` finds none.
SELECT_OPTIONS = "el => Array.from(el.options || [], o => ({value: o.value, label: o.label}))"

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


# The rules follow metascraper's (the extractor whose field set Capture answers): Open Graph,
# then Twitter cards, then plain HTML. `iframe` needs an oEmbed fetch, so it stays null here.
METADATA = r"""() => {
  const meta = (...names) => {
    for (const n of names) {
      const el = document.querySelector(
        `meta[property="${n}"],meta[name="${n}"],meta[itemprop="${n}"]`);
      const v = el && (el.getAttribute('content') || '').trim();
      if (v) return v;
    }
    return null;
  };
  const attr = (selector, name) => {
    const el = document.querySelector(selector);
    const v = el && (el.getAttribute(name) || '').trim();
    return v || null;
  };
  const abs = (v) => { if (!v) return null; try { return new URL(v, document.baseURI).href; }
                       catch (e) { return null; } };
  const text = (selector) => {
    const el = document.querySelector(selector);
    const v = el && (el.textContent || '').replace(/\s+/g, ' ').trim();
    return v || null;
  };
  const isoDate = (v) => { if (!v) return null; const d = new Date(v);
                           return isNaN(d.getTime()) ? null : d.toISOString(); };
  const lang = (document.documentElement.getAttribute('lang') || meta('og:locale') ||
                meta('language') || '').trim();
  return {
    title: meta('og:title', 'twitter:title') || (document.title || '').trim() || text('h1'),
    description: meta('og:description', 'twitter:description', 'description'),
    image: abs(meta('og:image:secure_url', 'og:image', 'og:image:url', 'twitter:image',
                    'twitter:image:src', 'image') || attr('link[rel="image_src"]', 'href')),
    lang: lang ? lang.split(/[-_]/)[0].toLowerCase() : null,
    author: meta('author', 'article:author', 'twitter:creator', 'dc.creator') ||
            text('[rel="author"]') || text('[itemprop="author"] [itemprop="name"]') ||
            text('[itemprop="author"]'),
    publisher: meta('og:site_name', 'application-name', 'publisher', 'twitter:site'),
    logo: abs(meta('og:logo', 'logo') || attr('[itemprop="logo"]', 'content') ||
              attr('link[rel="apple-touch-icon"]', 'href') ||
              attr('link[rel="icon"],link[rel="shortcut icon"]', 'href')),
    url: abs(meta('og:url', 'twitter:url') || attr('link[rel="canonical"]', 'href') ||
             location.href),
    date: isoDate(meta('article:published_time', 'article:modified_time', 'og:updated_time',
                       'date', 'dc.date', 'datePublished') || attr('time[datetime]', 'datetime')),
    feed: abs(attr('link[rel="alternate"][type="application/rss+xml"],' +
                   'link[rel="alternate"][type="application/atom+xml"],' +
                   'link[rel="alternate"][type="application/feed+json"]', 'href')),
    audio: abs(meta('og:audio:secure_url', 'og:audio', 'og:audio:url') ||
               attr('audio[src]', 'src') || attr('audio source[src]', 'src')),
    video: abs(meta('og:video:secure_url', 'og:video', 'og:video:url', 'twitter:player:stream') ||
               attr('video[src]', 'src') || attr('video source[src]', 'src')),
    iframe: null,
  };
}"""

# The page's own background: "dark" (its own dark theme, e.g. under prefers-color-scheme: dark;
# darkMode then leaves it alone rather than invert it to light), "light", or "none" (neither the
# root nor the body paints one: the canvas' default white, which a filter on html does not reach).
PAGE_BACKGROUND = r"""() => {
  const paint = el => {
    const m = el && getComputedStyle(el).backgroundColor.match(/rgba?\(([^)]+)\)/);
    const p = m ? m[1].split(',').map(Number) : null;
    return p && !(p.length > 3 && p[3] === 0) ? p : null;
  };
  const rgb = paint(document.documentElement) || paint(document.body);
  if (!rgb) return 'none';
  return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255 < 0.5 ? 'dark' : 'light';
}"""

# darkMode's stylesheet: the page inverted (light backgrounds dark, text light, hues kept) and a
# little dimmed; images, videos and canvases inverted back so they keep their colours.
DARK_MODE_CSS = (
    "html{filter:invert(1) hue-rotate(180deg) brightness(0.9) !important}"
    "img,video,picture,canvas,iframe,svg image,[style*='background-image']"
    "{filter:invert(1) hue-rotate(180deg) !important}"
)
# Added when the page paints no background, so the (inverted) page has one.
DARK_MODE_CANVAS_CSS = "html{background-color:#fff}"

# The page's full scroll height in CSS pixels (full=true with a clip rectangle).
PAGE_HEIGHT = (
    "() => Math.max(document.documentElement.scrollHeight, "
    "document.body ? document.body.scrollHeight : 0)"
)
