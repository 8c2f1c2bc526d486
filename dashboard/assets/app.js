// Shared by every dashboard page (SPEC 11): requests with the caller's own
// credentials, the key form and the sign-in link, polling, the states, ids,
// numbers, and charts with the same figures in a table. No build step: an ES
// module served as is; Chart.js is a classic script loaded before the page.

export const API = "/api/v1";
export const BASE = "/api/dashboard";
const KEY_STORE = "dashboard.functionKey";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Okabe-Ito: told apart with most colour vision deficiencies; all 3:1 or more on white.
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000"];
// Live parts ask again 0.8-1 s after each answer: jittered so pages do not ask in step, and
// never later than a second, so a change shows within 2 s of its 202 (SPEC 11).
export const LIVE = 1000;

// --- elements -------------------------------------------------------------------------------

/** An element: h("a", {href, class, text, title}, ...children). Attributes only, never styles. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const isUuid = (text) => UUID.test(String(text || "").trim());

/** A random UUID (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function newId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** An id shown by its first 8 characters, the whole id in the title; a link when a page shows it. */
export function idRef(id, kind) {
  if (!id) return h("span", { class: "id id-hidden", text: "another student" });
  const code = h("code", { class: "id", text: String(id).slice(0, 8) });
  if (kind) return h("a", { href: `${BASE}/${kind}/${id}`, title: id, class: "id-link" }, code);
  return h("span", { title: id, class: "id-wrap" }, code);
}

// --- numbers and times ----------------------------------------------------------------------

const NUMBER = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });
const DATE_TIME = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" });
const CLOCK = new Intl.DateTimeFormat("en-GB", { timeStyle: "medium" });

/** "1,234.5"; "—" (no data) for null. */
export const num = (value) => (value === null || value === undefined ? "—" : NUMBER.format(value));
/** A percentage already in 0..100. */
export const pct = (value) => (value === null || value === undefined ? "—" : `${num(value)}%`);
/** A share in 0..1 as a percentage. */
export const share = (value) =>
  value === null || value === undefined ? "—" : `${num(Math.round(value * 10000) / 100)}%`;

/** Seconds as "1 h 5 min", "4 min 20 s", "45 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (hours) return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  if (minutes) return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  return `${rest} s`;
}

/** A <time> with the exact instant in datetime and a readable local text. */
export function when(iso) {
  if (!iso) return h("span", { text: "—" });
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso, text: DATE_TIME.format(date) });
}

// --- who is asking --------------------------------------------------------------------------

let whoamiPromise = null;

/** The signed-in person ({id, name, roles}) from Easy Auth's /.auth/me, or null. */
export function whoami() {
  whoamiPromise ??= fetch("/.auth/me", { credentials: "same-origin", cache: "no-store" })
    .then((response) => (response.ok ? response.json() : null))
    .then((body) => {
      const identity = Array.isArray(body) ? body[0] : null;
      if (!identity || !identity.user_id) return null;
      const claims = identity.user_claims || [];
      const values = (typ) => claims.filter((c) => c.typ === typ).map((c) => c.val);
      return {
        id: String(identity.user_id).toLowerCase(),
        name: values("name")[0] || identity.user_id,
        roles: values("roles"),
      };
    })
    .catch(() => null);
  return whoamiPromise;
}

/** Whether a rule "own-record" route about `id` is worth asking (no refused attempt on record). */
export function mayReadOwnRecord(me, id) {
  if (!me) return true; // a program with a key (Service), or the host decides
  return me.id === String(id).toLowerCase() || me.roles.includes("Admin") || me.roles.includes("Service");
}

export function signInHref() {
  const here = location.pathname + location.search;
  const local = ["localhost", "127.0.0.1", "[::1]"].includes(location.hostname);
  const provider = local ? "dev" : "aad";
  return `/.auth/login/${provider}?post_login_redirect_uri=${encodeURIComponent(here)}`;
}

// --- requests -------------------------------------------------------------------------------

let keyPrompt = null;

/**
 * One request with the caller's credentials: the Easy Auth cookie, and the
 * function key when one was entered. The host's own 401 (keys mode, empty body)
 * asks for a key once, then the request is sent again with it.
 * Returns {kind, status, data, text, etag, message, retryAfter}; kind is one of
 * ok, signin, refused, notfound, unavailable, bad.
 */
export async function request(path, { method = "GET", body, known = null } = {}) {
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORE);
    const headers = { Accept: "application/json" };
    if (key) headers["x-functions-key"] = key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    let text;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-cache", // the HTTP cache revalidates with If-None-Match: an unchanged view is a 304
      });
      // The same ETag as the answer already shown (the cache's 304): nothing to read or parse.
      if (known && response.ok && response.headers.get("ETag") === known) {
        response.body?.cancel();
        return { kind: "ok", status: response.status, etag: known, unchanged: true };
      }
      text = await response.text();
    } catch {
      return { kind: "unavailable", status: 0, message: "The network or the service did not answer." };
    }
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    const message = data && typeof data.error === "string" ? data.error : "";
    const status = response.status;
    const etag = response.headers.get("ETag");
    // The Functions host's own 401 (AUTH_MODE=keys, no or a wrong key) has no body and no
    // WWW-Authenticate; the app's (and Easy Auth's) 401 means "sign in".
    if (status === 401 && !message && !response.headers.get("WWW-Authenticate")) {
      // Ask for a key, unless it changed meanwhile (another request asked already).
      if (sessionStorage.getItem(KEY_STORE) === key) await askForKey(key ? "rejected" : "needed", path);
      continue;
    }
    const answer = { status, data, text, etag, message };
    if (status >= 200 && status < 300) return { ...answer, kind: "ok" };
    if (status === 401) return { ...answer, kind: "signin" };
    if (status === 403) return { ...answer, kind: "refused" };
    if (status === 404) return { ...answer, kind: "notfound" };
    if (status >= 500 || status === 429) {
      const retryAfter = Number(response.headers.get("Retry-After")) || 0;
      return { ...answer, kind: "unavailable", retryAfter };
    }
    return { ...answer, kind: "bad", message: message || `The request was not understood (${status}).` };
  }
}

export const storedKey = () => sessionStorage.getItem(KEY_STORE);

/** Show the key form (once, shared by every request waiting for it); resolves with the key. */
function askForKey(reason, path) {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    const admin = /\/users\/[^/]+(\/export|\/disclosures)?$/.test(path.split("?")[0]);
    const input = h("input", {
      id: "key-input",
      name: "key",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      "aria-describedby": "key-why" + (reason === "rejected" ? " key-error" : ""),
    });
    const form = h(
      "form",
      { class: "key-form" },
      h("label", { for: "key-input", text: admin ? "Admin (master) key" : "Function key" }),
      h("div", { class: "inline" }, input, h("button", { type: "submit", text: "Use this key" })),
    );
    const box = h(
      "section",
      { class: "state state-key", id: "key-box", "aria-labelledby": "key-h" },
      h("h2", { id: "key-h", text: "A key is needed" }),
      h("p", {
        id: "key-why",
        text:
          "This app checks function keys. Enter one: it is kept in this browser tab only " +
          "(sessionStorage) and sent with each request as x-functions-key." +
          (admin ? " Export, disclosures and erasure need the admin (master) key." : ""),
      }),
      reason === "rejected"
        ? h("p", {
            id: "key-error",
            class: "error",
            role: "alert",
            text: "That key was not accepted for this request.",
          })
        : null,
      form,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      box.remove();
      keyPrompt = null;
      resolve(key);
    });
    const anchor = document.querySelector("main h1");
    anchor.after(box);
    input.focus();
  });
  return keyPrompt;
}

// --- the page and its states --------------------------------------------------------------

const STATE_TEXT = {
  loading: ["Loading…", ""],
  empty: ["Nothing recorded yet", ""],
  refused: ["You may not see this", ""],
  unavailable: ["Service unavailable, retrying", ""],
  signin: ["Sign in to see this", ""],
  notfound: ["Not found", ""],
  bad: ["This request was not accepted", ""],
  note: ["Not shown here", ""],
};

/** A state box: its own words and its own shape (border, marker), never colour alone. */
export function stateBox(kind, detail, { heading = false } = {}) {
  const [title] = STATE_TEXT[kind];
  const box = h("div", { class: `state state-${kind}`, "data-state": kind });
  box.append(
    heading ? h("h2", { class: "state-title", text: title }) : h("p", { class: "state-title", text: title }),
  );
  if (detail) box.append(h("p", { class: "state-detail", text: detail }));
  if (kind === "signin")
    box.append(h("p", {}, h("a", { href: signInHref(), class: "button", text: "Sign in" })));
  if (kind === "unavailable" || kind === "loading") box.setAttribute("role", "status");
  return box;
}

/** The page as a whole: page-level states replace every panel (no data shown beside them). */
export const page = {
  stopped: false,
  sources: [],
  /** Replace the panels by one state (refused, signin): nothing else is asked for. */
  halt(kind, message) {
    if (this.stopped) return;
    this.stopped = true;
    for (const source of this.sources) source.stop();
    for (const panel of document.querySelectorAll(".panel, .page-only")) panel.hidden = true;
    const holder = document.getElementById("page-state");
    const detail =
      kind === "refused"
        ? message || "The service refused this request."
        : kind === "signin"
          ? "This page shows personal records: sign in first."
          : message;
    holder.replaceChildren(stateBox(kind, detail, { heading: true }));
    holder.hidden = false;
  },
};

/** One section of a page: <section class="panel" id> with an <h2> and a .panel-body. */
export class Panel {
  constructor(id) {
    this.el = document.getElementById(id);
    this.body = this.el.querySelector(".panel-body");
    this.note = this.el.querySelector(".panel-note");
    this.charts = [];
    this.kind = "loading";
  }

  state(kind, detail) {
    if (this.kind === kind && this.detail === detail) return; // the same again: leave it be
    this.detail = detail;
    this.dropCharts();
    this.kind = kind;
    this.body.replaceChildren(stateBox(kind, detail));
    this.body.setAttribute("aria-busy", kind === "loading" ? "true" : "false");
  }

  show(...nodes) {
    this.dropCharts();
    this.kind = "data";
    this.body.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
    this.body.setAttribute("aria-busy", "false");
    for (const figure of this.body.querySelectorAll("figure.chart")) {
      const chart = figure.makeChart?.();
      if (chart) this.charts.push(chart);
    }
  }

  dropCharts() {
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
  }

  changed(live) {
    if (!this.note) return;
    const now = CLOCK.format(new Date());
    this.note.textContent = live ? `Live: checked every second; last change ${now}` : `Updated ${now}`;
  }
}

/**
 * Data from one API address into one panel, once or polled.
 * - render(data) returns the panel's nodes; isEmpty(data) shows "nothing recorded yet";
 * - a 403 or 401 halts the page when `gate` (the page's first request) and stops this source
 *   otherwise (a refused read is logged: never repeat it every second);
 * - a 503 or no answer shows "service unavailable, retrying" and keeps trying;
 * - an unchanged answer (same ETag, or the same text when there is none) is not re-rendered.
 */
export class Source {
  // notFound: [state, text] for a 404 ("empty" keeps polling: the first event will create it).
  // onData(data) runs on each new answer (e.g. to draw other panels from it, listed in `also`
  // so that they show this source's states too).
  constructor(url, panel, opts) {
    const { render, isEmpty = () => false, empty = "", every = 0, gate = false, notFound = null } = opts;
    Object.assign(this, { url, panel, render, isEmpty, empty, every, gate, notFound });
    this.onData = opts.onData || null;
    this.accept = opts.accept || []; // statuses whose body is data too (health's 503)
    this.also = opts.also || [];
    this.last = null;
    this.timer = null;
    this.waiting = false;
    this.stopped = false;
    this.listeners = [];
    this.loads = 0;
    page.sources.push(this);
  }

  /** Render the last answer again (e.g. once titles are known). */
  rerender() {
    if (this.last && this.panel.kind === "data") this.panel.show(this.render(this.last.data));
  }

  onChange(fn) {
    this.listeners.push(fn);
    return this;
  }

  /** Fetch once now; resolves with the result's kind. */
  async load() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || page.stopped) return "stopped";
    const result = await request(typeof this.url === "function" ? this.url() : this.url, {
      known: this.last?.etag,
    });
    if (this.stopped || page.stopped) return result.kind;
    this.loads += 1;
    if (result.kind === "ok" || (this.accept.includes(result.status) && result.data)) {
      const same = result.unchanged || (this.last && !result.etag && result.text === this.last.text);
      if (!same) {
        const first = this.last === null;
        this.last = result;
        this.onData?.(result.data);
        if (this.isEmpty(result.data)) this.panel.state("empty", this.empty);
        else this.panel.show(this.render(result.data));
        this.panel.changed(this.every > 0 && this.every <= LIVE * 2);
        if (!first) for (const fn of this.listeners) fn(result.data);
      }
    } else {
      this.last = null; // show the data again once it is back, changed or not
      if ((result.kind === "refused" || result.kind === "signin") && this.gate) {
        page.halt(result.kind, result.message);
      } else {
        const [kind, text] =
          result.kind === "notfound" && this.notFound ? this.notFound : [result.kind, result.message];
        for (const panel of [this.panel, ...this.also]) panel.state(kind, text);
      }
      if (result.kind === "refused" || result.kind === "signin" || result.kind === "bad") this.stop();
    }
    this.schedule(result);
    return result.kind;
  }

  /** The next poll: after 80-100 % of `every` ms, later after a 503, never while hidden. */
  schedule(result) {
    if (this.stopped || page.stopped) return;
    let delay = this.every;
    if (result.kind === "unavailable") {
      const hinted = (result.retryAfter || 0) * 1000;
      delay = Math.max(this.every || 0, Math.min(hinted || 3000, 5000));
    } else if (result.kind === "notfound" && this.notFound?.[0] !== "empty") {
      return; // nothing there, and nothing that an event would create
    }
    if (!delay) return;
    if (document.hidden) {
      this.waiting = true;
      return;
    }
    this.timer = setTimeout(() => this.load(), delay * (0.8 + Math.random() * 0.2));
  }

  /** Load again in `ms` (coalesced with a load already due sooner). */
  soon(ms) {
    if (this.stopped || page.stopped) return;
    if (this.timer && this.dueAt && this.dueAt <= Date.now() + ms) return;
    clearTimeout(this.timer);
    this.dueAt = Date.now() + ms;
    this.timer = setTimeout(() => this.load(), ms);
  }

  resume() {
    if (this.waiting && !this.stopped) {
      this.waiting = false;
      this.load();
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) for (const source of page.sources) source.resume();
});

/** Load the page's first source; only when it was not refused (or unsigned) load the others. */
export async function begin(gate, ...others) {
  const kind = await gate.load();
  if (page.stopped) return false;
  for (const source of others) source?.load();
  return kind;
}

/**
 * A report that follows a live view: loaded once, then again when the live view changes
 * (at most every `gap` ms, after `delay` ms so the reporting store has the event too).
 */
export function follow(report, live, { delay = 3000, gap = 15000 } = {}) {
  let lastAt = Date.now();
  live.onChange(() => {
    const wait = Math.max(delay, lastAt + gap - Date.now());
    lastAt = Date.now() + wait;
    report.soon(wait);
  });
}

// --- the page frame -----------------------------------------------------------------------

/** The header's "signed in as" line; the skip link and navigation are in each page's HTML. */
export async function frame() {
  const slot = document.getElementById("who");
  if (!slot) return null;
  const me = await whoami();
  const back = encodeURIComponent(location.pathname + location.search);
  if (me) {
    slot.replaceChildren(
      "Signed in as ",
      h("strong", { text: me.name }),
      me.roles.length ? ` (${me.roles.join(", ")})` : "",
      " · ",
      h("a", { href: `/.auth/logout?post_logout_redirect_uri=${back}`, text: "Sign out" }),
    );
  } else {
    slot.replaceChildren(
      storedKey() ? "Using a function key · " : "Not signed in · ",
      h("a", { href: signInHref(), text: "Sign in" }),
    );
  }
  return me;
}

/**
 * The id a page is about, from its address (/api/dashboard/<kind>/<id>); without one the page
 * shows a box to type it. Sets the heading and the document title.
 */
export function pageId(kind, noun) {
  const parts = location.pathname.replace(/\/+$/, "").split("/");
  const at = parts.indexOf(kind);
  const raw = at >= 0 ? decodeURIComponent(parts[at + 1] || "") : "";
  const heading = document.querySelector("main h1");
  if (raw && isUuid(raw)) {
    const id = raw.toLowerCase();
    heading.replaceChildren(`${noun} `, idRef(id));
    document.title = `${noun} ${id.slice(0, 8)} · Activity dashboards`;
    return id;
  }
  for (const panel of document.querySelectorAll(".panel, .page-only")) panel.hidden = true;
  const holder = document.getElementById("page-state");
  holder.hidden = false;
  holder.replaceChildren(idForm(kind, noun, raw ? `"${raw.slice(0, 60)}" is not an id: ids are UUIDs.` : ""));
  return null;
}

/** Name the page's lesson or quiz when the viewer's own overview lists it (one request). */
export async function nameFromOverview(me, id, noun) {
  if (!me) return;
  const answer = await request(`${API}/users/${me.id}/overview`);
  if (answer.kind !== "ok") return;
  const { content = [], lessons = [], quizzes = [] } = answer.data;
  const titles = [
    ...content.map((c) => [c.content_id, c.title]),
    ...lessons.map((l) => [l.lesson_id, l.title]),
    ...quizzes.map((q) => [q.quiz_id, q.title]),
  ];
  const title = titles.find(([thing, text]) => thing === id && text)?.[1];
  if (!title || page.stopped) return;
  document.querySelector("main h1").replaceChildren(`${noun}: ${title} `, idRef(id));
  document.title = `${title} · Activity dashboards`;
}

/** A form to open a page by id: one kind, or a choice of kinds. */
export function idForm(kind, noun, problem = "", { bare = false } = {}) {
  const kinds = Array.isArray(kind) ? kind : [[kind, noun]];
  const fieldId = `open-${kinds.length > 1 ? "any" : kinds[0][0]}`;
  const input = h("input", {
    id: fieldId,
    name: "id",
    type: "text",
    required: true,
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "00000000-0000-0000-0000-000000000000",
    "aria-describedby": `${fieldId}-hint${problem ? ` ${fieldId}-error` : ""}`,
    "aria-invalid": problem ? "true" : null,
  });
  const select =
    kinds.length > 1
      ? h(
          "select",
          { id: `${fieldId}-kind`, name: "kind" },
          kinds.map(([value, label]) => h("option", { value, text: label })),
        )
      : null;
  const error = h("p", {
    id: `${fieldId}-error`,
    class: "error",
    role: "alert",
    text: problem,
    hidden: !problem,
  });
  const form = h(
    "form",
    { class: "id-form" },
    select ? h("div", { class: "field" }, h("label", { for: select.id, text: "Page" }), select) : null,
    h(
      "div",
      { class: "field" },
      h("label", { for: fieldId, text: kinds.length > 1 ? "Id" : `${noun} id` }),
      h("p", { id: `${fieldId}-hint`, class: "hint", text: "A UUID, as the events carry it." }),
      h("div", { class: "inline" }, input, h("button", { type: "submit", text: "Open" })),
    ),
    error,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!isUuid(value)) {
      error.textContent = `"${value.slice(0, 60)}" is not an id: ids are UUIDs.`;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", `${fieldId}-hint ${fieldId}-error`);
      input.focus();
      return;
    }
    location.assign(`${BASE}/${select ? select.value : kinds[0][0]}/${value.toLowerCase()}`);
  });
  if (bare) return form;
  return h(
    "section",
    { class: "open-box", "aria-labelledby": `${fieldId}-h` },
    h("h2", {
      id: `${fieldId}-h`,
      text: kinds.length > 1 ? "Open a page by id" : `Which ${noun.toLowerCase()}?`,
    }),
    form,
  );
}

// --- tables and charts ----------------------------------------------------------------------

/** A table with a caption; cells are text or nodes; `numeric` columns are right-aligned. */
export function table(caption, headers, rows, { numeric = [], rowHeaders = true, className = "" } = {}) {
  const head = h(
    "thead",
    {},
    h(
      "tr",
      {},
      headers.map((text, i) => h("th", { scope: "col", class: numeric.includes(i) ? "num" : null, text })),
    ),
  );
  const body = h(
    "tbody",
    {},
    rows.map((cells) =>
      h(
        "tr",
        {},
        cells.map((cell, i) => {
          const tag = i === 0 && rowHeaders ? "th" : "td";
          const attrs = { class: numeric.includes(i) ? "num" : null };
          if (tag === "th") attrs.scope = "row";
          return h(tag, attrs, cell instanceof Node ? cell : String(cell));
        }),
      ),
    ),
  );
  const captionEl = h("caption", {}, caption);
  return scroller(h("table", { class: className || null }, captionEl, head, body), caption);
}

/** Lets a wide table scroll inside its own box (never the page), reachable by keyboard. */
export function scroller(tableEl, label) {
  return h(
    "div",
    {
      class: "table-scroll",
      tabindex: "0",
      role: "region",
      "aria-label": typeof label === "string" ? label : "table",
    },
    tableEl,
  );
}

/** A stat list: [[label, value], ...] as a <dl>. */
export function stats(pairs) {
  return h(
    "dl",
    { class: "stats" },
    pairs.map(([label, value]) =>
      h(
        "div",
        { class: "stat" },
        h("dt", { text: label }),
        h("dd", {}, value instanceof Node ? value : String(value)),
      ),
    ),
  );
}

/**
 * A chart and, under it, the same figures in a table (for screen readers, and for anyone who
 * wants the numbers). series: [{label, data, axis}]; format turns a value into its table text.
 * Chart.js draws when the panel shows the figure (the canvas must be in the page to measure).
 */
export function chart({
  caption,
  labels,
  series,
  type = "bar",
  horizontal = false,
  stacked = false,
  format = num,
  labelHeader = "",
  axes = null,
  tall = false,
}) {
  const canvas = h("canvas", {
    role: "img",
    "aria-label": `${caption}. The figures are in the table below the chart.`,
  });
  const size = tall ? " tall" : horizontal && labels.length <= 4 ? " short" : "";
  const box = h("div", { class: `chart-box${size}` }, canvas);
  const rows = labels.map((label, i) => [label, ...series.map((s) => format(s.data[i], s))]);
  const figures = table(caption, [labelHeader || "", ...series.map((s) => s.label)], rows, {
    numeric: series.map((_, i) => i + 1),
  });
  const details = h(
    "details",
    { class: "figures" },
    h("summary", { text: "The figures as a table" }),
    figures,
  );
  const figure = h("figure", { class: "chart" }, h("figcaption", { text: caption }), box, details);
  figure.makeChart = () => {
    if (!window.Chart) {
      box.hidden = true; // no chart library: the table is the figure
      details.open = true;
      return null;
    }
    const scales = axes || {
      [horizontal ? "y" : "x"]: {
        stacked,
        ticks: { color: "#333", autoSkip: true, maxRotation: 0 },
        grid: { display: false },
      },
      [horizontal ? "x" : "y"]: { stacked, beginAtZero: true, ticks: { color: "#333", precision: 0 } },
    };
    return new window.Chart(canvas, {
      type,
      data: {
        labels,
        datasets: series.map((s, i) => ({
          label: s.label,
          data: s.data,
          yAxisID: s.axis,
          backgroundColor: PALETTE[i % PALETTE.length],
          borderColor: PALETTE[i % PALETTE.length],
          borderWidth: type === "line" ? 2 : 0,
          pointRadius: type === "line" ? 3 : undefined,
          pointStyle: ["circle", "rect", "triangle", "rectRot", "star", "cross", "crossRot"][i % 7],
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        plugins: {
          legend: {
            display: series.length > 1,
            labels: { color: "#1b1b1b", usePointStyle: type === "line" },
          },
          tooltip: { enabled: true },
        },
        scales,
      },
    });
  };
  return figure;
}

/** Chart labels for ids: the first 8 characters (the table beside it has the same). */
export const shortLabel = (id) => (id ? String(id).slice(0, 8) : "—");

/** Start the page frame; every page module calls this first. */
export async function start() {
  return frame();
}
