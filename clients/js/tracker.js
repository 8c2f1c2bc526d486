// The browser activity tracker (SPEC 12): an ES module, no build step, no dependencies.
//
//   import { createTracker } from "/api/dashboard/assets/tracker.js";
//   const tracker = createTracker({ headers: { "x-functions-key": key } });
//   tracker.lessonProgress({ student_id, lesson_id, ... });
//
// Events get a client-made event_id, are written to localStorage before they
// are sent, go in batches, are retried with the same ids (the server dedupes
// on event_id) and leave the buffer only once the server answered for them.
// See README.md next to this file for the options, guarantees and limits.

// The API's limits (shared/limits.py): events and bytes per request.
const MAX_EVENTS_PER_REQUEST = 500;
const MAX_REQUEST_BYTES = 1024 * 1024;
// Browsers refuse keepalive requests once their bodies in flight pass 64 KiB.
const KEEPALIVE_BYTES = 64 * 1024;
// Bytes of '{"events":[' and ']}' around the events.
const BODY_OVERHEAD = 13;
// A Retry-After longer than this is taken as this.
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
// Another tab's buffer written this recently is never taken over: its owner may
// not hold its lock yet.
const GRACE_MS = 3000;
// Without Web Locks a tab proves it is alive by rewriting its buffer; one not
// rewritten for this long is orphaned (hidden tabs' timers run once a minute).
const LEASE_MS = 3 * 60 * 1000;
// How often to refresh our buffer (no Web Locks) and look for orphaned ones.
const SCAN_MS = 15 * 1000;

// Statuses whose batch is kept and sent again later (same event ids).
// 401/403: the credentials (a key, an expired sign-in), not the events, were refused.
const RETRIED = new Set([401, 403, 408, 429]);

const TYPES = {
  lessonProgress: "lesson_progress",
  quizAttempt: "quiz_attempt",
  forumActivity: "forum_activity",
  contentActivity: "content_activity",
  feedback: "feedback",
  liveClassEngagement: "live_class_engagement",
};

const encoder = new TextEncoder();

function newEventId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function openStorage() {
  try {
    const storage = globalThis.localStorage;
    const probe = "__activity_tracker_probe__";
    storage.setItem(probe, probe);
    storage.removeItem(probe);
    return storage;
  } catch {
    return null; // private mode, disabled storage, no window: memory only
  }
}

function webLocks() {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  return locks && typeof locks.request === "function" ? locks : null;
}

function positive(value, fallback) {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : fallback;
}

function message(error) {
  return (error && error.message) || String(error);
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or null. */
function retryAfterMs(response) {
  const value = response && response.headers.get("Retry-After");
  if (!value) return null;
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isNaN(ms) ? null : Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The first events of `list` whose request body fits in `maxBytes` (at most `maxEvents`). */
function take(list, maxEvents, maxBytes) {
  const batch = [];
  let size = BODY_OVERHEAD;
  for (const entry of list) {
    if (batch.length >= maxEvents) break;
    const grown = size + entry.bytes + (batch.length ? 1 : 0);
    if (grown > maxBytes) break;
    batch.push(entry);
    size = grown;
  }
  return { batch, size };
}

function bodyOf(batch) {
  return `{"events":[${batch.map((entry) => entry.json).join(",")}]}`;
}

function entryOf(event, enqueuedAt) {
  const json = JSON.stringify(event);
  const bytes = encoder.encode(json).length;
  return { id: event.event_id, json, bytes, t: enqueuedAt, sending: 0, keepalive: false };
}

/** A tracker for one page (or worker). See README.md for the options. */
export function createTracker(options = {}) {
  const endpoint = options.endpoint || "/api/v1/events";
  const headers = options.headers || {};
  const credentials = options.credentials || "same-origin";
  const maxBatch = Math.min(Math.floor(positive(options.maxBatch, 100)), MAX_EVENTS_PER_REQUEST);
  const flushInterval = positive(options.flushInterval, 1000);
  const maxBuffer = Math.floor(positive(options.maxBuffer, 5000));
  const storageKey = options.storageKey || "activity-tracker";
  const baseDelay = positive(options.retry && options.retry.baseDelay, 500);
  const maxDelay = positive(options.retry && options.retry.maxDelay, 30000);

  // Each tracker (tab, module copy) writes only its own entry, so tabs never
  // overwrite each other's events; an entry whose owner is gone is taken over.
  const tabId = newEventId();
  const ownKey = `${storageKey}:${tabId}`;
  const lockName = (owner) => `activity-tracker:${storageKey}:${owner}`;
  const storage = openStorage();
  const locks = storage ? webLocks() : null;

  let queue = []; // oldest first: {id, json, bytes, t (ms enqueued), sending (requests carrying it)}
  const listeners = new Set();
  const keepalives = new Set(); // promises of keepalive sends in flight
  let keepaliveBytes = 0;
  let released = false; // our entry may be taken over (page hidden for good, or stopped)
  let stopped = false;
  let dirty = false;
  let persistQueued = false;
  let storageFailing = false;
  let stored = false; // our entry is in localStorage (as far as we wrote it)
  let pumping = null; // the promise of the send loop, when it runs
  let forcing = 0; // flush() calls waiting
  let timer = null;
  let timerAt = 0;
  let attempt = 0; // consecutive failures, for the backoff
  let retryAt = 0;
  let serverWait = false; // retryAt comes from a Retry-After
  let dropped = null; // {dropped, event_ids} to report
  let releaseLock = () => {};

  // --- results ---------------------------------------------------------------

  function emit(result) {
    for (const listener of listeners) {
      try {
        listener(result);
      } catch (error) {
        setTimeout(() => {
          throw error; // reported as uncaught, without breaking the tracker
        });
      }
    }
  }

  function reportDropped(entries) {
    if (!entries.length) return;
    if (!dropped) {
      dropped = { dropped: 0, event_ids: [] };
      queueMicrotask(() => {
        const report = dropped;
        dropped = null;
        emit(report);
      });
    }
    dropped.dropped += entries.length;
    for (const entry of entries) dropped.event_ids.push(entry.id);
  }

  // --- the stored buffer --------------------------------------------------------

  function readEntry(key) {
    try {
      const text = storage.getItem(key);
      const record = text && JSON.parse(text);
      return record && Array.isArray(record.events) ? record : null;
    } catch {
      return null;
    }
  }

  function persist() {
    dirty = false;
    if (!storage) return;
    try {
      // Once released, another tab may have taken the entry over: do not bring it back.
      if (released && stored && storage.getItem(ownKey) === null) {
        stored = false;
        return;
      }
      if (!queue.length) {
        storage.removeItem(ownKey);
        stored = false;
      } else {
        const head = { v: 1, owner: tabId, at: Date.now(), released };
        const text = JSON.stringify(head).slice(0, -1);
        storage.setItem(ownKey, `${text},"events":[${queue.map((e) => e.json).join(",")}]}`);
        stored = true;
      }
      storageFailing = false;
    } catch (error) {
      // Quota or storage gone: the events stay in memory and are still sent.
      if (!storageFailing) emit({ error: `localStorage: ${message(error)}` });
      storageFailing = true;
    }
  }

  function markDirty() {
    dirty = true;
    if (persistQueued) return;
    persistQueued = true;
    queueMicrotask(() => {
      persistQueued = false;
      if (dirty) persist();
    });
  }

  function add(entries, atFront) {
    if (!entries.length) return;
    if (atFront) queue = entries.concat(queue);
    else for (const entry of entries) queue.push(entry);
    if (queue.length > maxBuffer) reportDropped(queue.splice(0, queue.length - maxBuffer));
    markDirty();
    schedule();
  }

  function remove(ids) {
    const gone = new Set(ids);
    const before = queue.length;
    queue = queue.filter((entry) => !gone.has(entry.id));
    if (queue.length !== before) markDirty();
  }

  // --- taking over the buffers of tabs that are gone ------------------------------

  function adopt(key) {
    const record = readEntry(key);
    if (!record || stopped || released) return;
    const known = new Set(queue.map((entry) => entry.id));
    const entries = [];
    for (const event of record.events) {
      if (!event || typeof event.event_id !== "string" || known.has(event.event_id)) continue;
      known.add(event.event_id);
      entries.push(entryOf(event, 0)); // due at once
    }
    add(entries, true);
    persist(); // ours holds them before theirs goes
    try {
      storage.removeItem(key);
      if (storageFailing) persist(); // over quota: theirs gone, ours may fit now
    } catch {
      // it stays; taking it over again later only repeats ids the server dedupes
    }
  }

  function scan() {
    if (!storage || stopped || released) return;
    const keys = [];
    try {
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        if (key && key.startsWith(`${storageKey}:`) && key !== ownKey) keys.push(key);
      }
    } catch {
      return;
    }
    const now = Date.now();
    for (const key of keys) {
      const record = readEntry(key);
      if (!record) continue;
      const age = now - (Number(record.at) || 0);
      if (locks) {
        // A live owner holds its lock; getting it means the owner is gone.
        if (!record.released && age < GRACE_MS) continue;
        try {
          locks
            .request(lockName(record.owner), { ifAvailable: true }, (lock) => {
              if (lock) adopt(key);
            })
            .catch(() => {});
        } catch {
          // locks refused (opaque origin): leave it
        }
      } else if (record.released || age > LEASE_MS) {
        const claimedByOther =
          record.claim && record.claim !== tabId && now - (Number(record.claimAt) || 0) < LEASE_MS;
        if (!claimedByOther) claim(key, record);
      }
    }
  }

  // Without Web Locks: write our claim, and take over only if it is still ours a moment later.
  function claim(key, record) {
    try {
      storage.setItem(key, JSON.stringify({ ...record, claim: tabId, claimAt: Date.now() }));
    } catch {
      return;
    }
    setTimeout(
      () => {
        const again = readEntry(key);
        if (again && again.claim === tabId) adopt(key);
      },
      100 + Math.random() * 400,
    );
  }

  function holdLock() {
    if (!locks) return Promise.resolve();
    let release;
    const held = new Promise((resolve) => {
      release = resolve;
    });
    const granted = new Promise((resolve) => {
      try {
        locks
          .request(lockName(tabId), () => {
            resolve();
            return held;
          })
          .catch(resolve);
      } catch {
        resolve();
      }
    });
    releaseLock = () => {
      release();
      releaseLock = () => {};
    };
    return granted;
  }

  // --- sending ---------------------------------------------------------------------

  function schedule() {
    if (stopped || pumping) return; // the send loop calls schedule() when it ends
    let first = null;
    let unsent = 0;
    for (const entry of queue) {
      if (entry.sending) continue;
      if (!first) first = entry;
      if (++unsent >= maxBatch) break;
    }
    if (!first) {
      clearTimeout(timer);
      timer = null;
      return;
    }
    const due = Math.max(unsent >= maxBatch ? 0 : first.t + flushInterval, retryAt);
    if (timer && timerAt <= due) return;
    clearTimeout(timer);
    timerAt = due;
    timer = setTimeout(
      () => {
        timer = null;
        kick();
      },
      Math.max(0, due - Date.now()),
    );
  }

  function kick() {
    if (!pumping) {
      pumping = pump().finally(() => {
        pumping = null;
        schedule();
      });
    }
    return pumping;
  }

  // One request at a time; resolves "idle", "failed" (retry later), "wait" or "stopped".
  async function pump() {
    while (!stopped) {
      const now = Date.now();
      if (now < retryAt && (serverWait || !forcing)) return "wait";
      const unsent = queue.filter((entry) => !entry.sending);
      if (!unsent.length) return "idle";
      if (!forcing && unsent.length < maxBatch && unsent[0].t + flushInterval > now) return "idle";
      let { batch } = take(unsent, maxBatch, MAX_REQUEST_BYTES);
      if (!batch.length) batch = [unsent[0]]; // over 1 MiB alone: the server's 413 drops it
      if ((await send(batch, false)) === "failed") return "failed";
    }
    return "stopped";
  }

  function failed(report, response) {
    attempt += 1;
    const backoff = Math.min(maxDelay, baseDelay * 2 ** (attempt - 1));
    const waitAfter = retryAfterMs(response);
    const delay = Math.max(backoff / 2 + (Math.random() * backoff) / 2, waitAfter || 0);
    retryAt = Date.now() + delay;
    serverWait = waitAfter !== null;
    emit({ ...report, retry_in: Math.round(delay) });
    return "failed";
  }

  function answered() {
    attempt = 0;
    retryAt = 0;
    serverWait = false;
  }

  function withEventIds(rejected, batch) {
    return (Array.isArray(rejected) ? rejected : []).map((item) => ({
      ...item,
      event_id: batch[item && item.index] ? batch[item.index].id : undefined,
    }));
  }

  // Sends one batch; resolves "ok", "dropped" or "failed" (kept for a retry).
  async function send(batch, keepalive) {
    for (const entry of batch) entry.sending += 1;
    const done = () => {
      for (const entry of batch) entry.sending -= 1;
    };
    if (dirty) persist(); // stored before it is sent
    const ids = batch.map((entry) => entry.id);
    let response;
    let requestHeaders;
    try {
      // Called, and awaited only when it returns a promise: at pagehide the
      // request must start before the handler returns.
      let given = typeof headers === "function" ? headers() : headers;
      if (given && typeof given.then === "function") given = await given;
      requestHeaders = new Headers(given || {});
    } catch (error) {
      done();
      return failed({ error: `headers: ${message(error)}`, event_ids: ids }, null);
    }
    try {
      requestHeaders.set("Content-Type", "application/json");
      response = await fetch(endpoint, {
        method: "POST",
        headers: requestHeaders,
        body: bodyOf(batch),
        credentials,
        keepalive,
      });
    } catch (error) {
      done();
      return failed({ error: `network: ${message(error)}`, event_ids: ids }, null);
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      // a proxy's page, or no body
    }
    done();
    const status = response.status;
    const error = (answer && answer.error) || `HTTP ${status}`;
    if (response.ok) {
      answered();
      remove(ids); // accepted, or rejected for good: none is sent again
      emit({
        accepted: answer && Number.isInteger(answer.accepted) ? answer.accepted : ids.length,
        event_ids: answer && Array.isArray(answer.event_ids) ? answer.event_ids : ids,
        rejected: withEventIds(answer && answer.rejected, batch),
        status,
      });
      return "ok";
    }
    if (status >= 500 || RETRIED.has(status)) {
      return failed({ error, status, event_ids: ids }, response);
    }
    answered();
    if (status === 413 && batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      if ((await send(batch.slice(0, half), keepalive)) === "failed") return "failed";
      return send(batch.slice(half), keepalive);
    }
    remove(ids); // 400, 413 alone, 415, 422, ...: it can never succeed
    if (status === 422 && answer) {
      emit({
        accepted: 0,
        event_ids: [],
        rejected: withEventIds(answer.rejected, batch),
        status,
      });
    } else {
      emit({ error, status, event_ids: ids });
    }
    return "dropped";
  }

  // The page may be going away: send what fits in keepalive requests, which
  // outlive it. The events stay stored until an answer (this one's, if the page
  // lives to read it, or a later load's) confirms them.
  function sendKeepalive(withInFlight) {
    // Not while the server's Retry-After runs, nor offline: the next load sends them.
    if (stopped || (serverWait && Date.now() < retryAt)) return;
    if (globalThis.navigator && globalThis.navigator.onLine === false) return;
    // On pagehide the ordinary request in flight is cancelled with the page: send its events too.
    let candidates = queue.filter((entry) => !entry.keepalive && (withInFlight || !entry.sending));
    while (candidates.length) {
      const budget = Math.min(KEEPALIVE_BYTES - keepaliveBytes, MAX_REQUEST_BYTES);
      const { batch, size } = take(candidates, maxBatch, budget);
      if (!batch.length) break;
      candidates = candidates.slice(batch.length);
      keepaliveBytes += size;
      for (const entry of batch) entry.keepalive = true;
      const sent = send(batch, true).finally(() => {
        for (const entry of batch) entry.keepalive = false;
        keepaliveBytes -= size;
        keepalives.delete(sent);
      });
      keepalives.add(sent);
    }
  }

  // --- page life ------------------------------------------------------------------

  function onPageHide() {
    if (dirty) persist();
    sendKeepalive(true); // requests already in flight are cancelled with the page
    released = true;
    persist();
    releaseLock();
  }

  function onPageShow(event) {
    if (!event.persisted || stopped) return;
    // Back from the back/forward cache: our entry is ours again unless a tab took it over.
    holdLock().then(() => {
      if (!storage) {
        released = false;
        return;
      }
      const record = readEntry(ownKey);
      if (!record || (record.claim && record.claim !== tabId)) {
        queue = []; // another tab sends them now
      } else {
        released = false;
        persist();
      }
      schedule();
    });
  }

  function onVisibility() {
    if (document.visibilityState === "hidden") {
      if (dirty) persist();
      sendKeepalive(false);
    }
  }

  function onOnline() {
    if (!serverWait) retryAt = 0; // the network is back: no need to wait out the backoff
    schedule();
  }

  function onStorage(event) {
    if (event.key && event.key.startsWith(`${storageKey}:`) && event.newValue) {
      if (event.newValue.includes('"released":true')) scan();
    }
  }

  const listening = typeof addEventListener === "function";
  if (listening) {
    addEventListener("pagehide", onPageHide);
    addEventListener("pageshow", onPageShow);
    addEventListener("online", onOnline);
    addEventListener("storage", onStorage);
    if (typeof document !== "undefined") document.addEventListener("visibilitychange", onVisibility);
  }
  const scanner = setInterval(() => {
    if (!locks && queue.length) persist(); // still alive
    scan();
  }, SCAN_MS);
  holdLock();
  scan();

  function track(type, fields) {
    const event = { ...fields, type };
    if (typeof event.event_id !== "string" || !event.event_id) event.event_id = newEventId();
    add([entryOf(event, Date.now())], false);
    return event.event_id;
  }

  const tracker = {
    /** Sends everything buffered; resolves with the number of events still pending. */
    async flush() {
      forcing += 1;
      try {
        while (!stopped) {
          const result = await kick();
          if (result === "failed" || result === "wait") break;
          if (queue.every((entry) => entry.sending)) {
            if (!keepalives.size && !pumping) break;
            await Promise.allSettled([...keepalives]);
          }
        }
      } finally {
        forcing -= 1;
      }
      return queue.length;
    },
    /** Events not yet answered by the server (buffered or in flight). */
    pending() {
      return queue.length;
    },
    /** fn(result) for each answered batch, failure and drop; returns an unsubscribe function. */
    onResult(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** Stops timers and listeners; what is still buffered is sent by a later tracker. */
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      clearInterval(scanner);
      if (listening) {
        removeEventListener("pagehide", onPageHide);
        removeEventListener("pageshow", onPageShow);
        removeEventListener("online", onOnline);
        removeEventListener("storage", onStorage);
        if (typeof document !== "undefined") {
          document.removeEventListener("visibilitychange", onVisibility);
        }
      }
      released = true;
      persist();
      releaseLock();
    },
  };
  for (const [name, type] of Object.entries(TYPES)) {
    tracker[name] = (fields) => track(type, fields);
  }
  return tracker;
}
