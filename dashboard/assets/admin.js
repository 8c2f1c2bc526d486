// Administration: health (and poison-queue counts when health reports them), and one
// user's records: export (downloaded as one JSON file), disclosures, and erasure.
import { API, Panel, Source, h, isUuid, num, request, start, stateBox, table, when } from "./app.js";

await start();

// --- health ---------------------------------------------------------------------------------

/** Poison-queue counts wherever health carries them ({name: n}, {name: {count}}, or a list). */
function poisonCounts(health) {
  const found = [];
  const count = (value) =>
    typeof value === "number"
      ? value
      : value && typeof value === "object"
        ? (value.count ?? value.messages ?? value.approximate_message_count ?? null)
        : null;
  const visit = (value, depth) => {
    if (!value || typeof value !== "object" || depth > 3) return;
    for (const [key, inner] of Object.entries(value)) {
      if (/poison/i.test(key)) {
        if (Array.isArray(inner)) {
          for (const item of inner) found.push([item.queue ?? item.name ?? "?", count(item)]);
        } else if (inner && typeof inner === "object") {
          for (const [name, item] of Object.entries(inner)) found.push([name, count(item)]);
        } else if (typeof inner === "number") {
          found.push([key, inner]);
        }
      } else {
        visit(inner, depth + 1);
      }
    }
  };
  visit(health, 0);
  return found.filter(([, n]) => n !== null);
}

new Source(`${API}/health`, new Panel("health"), {
  every: 10000,
  accept: [503], // "degraded" comes as a 503 with the same body
  render: (data) => {
    const ok = data.status === "ok";
    const parts = [
      h(
        "p",
        {},
        "Overall: ",
        h("span", { class: ok ? "status-ok" : "status-bad", text: ok ? "OK" : "Degraded" }),
      ),
      table(
        "Dependencies",
        ["Dependency", "Status", "Latency", "Error"],
        Object.entries(data.dependencies).map(([name, dep]) => [
          name,
          h("span", {
            class: dep.status === "up" ? "status-ok" : "status-bad",
            text: dep.status === "up" ? "Up" : "Down",
          }),
          dep.latency_ms === null || dep.latency_ms === undefined ? "—" : `${num(dep.latency_ms)} ms`,
          dep.error || "",
        ]),
        { numeric: [2] },
      ),
    ];
    const poison = poisonCounts(data);
    if (poison.length) {
      parts.push(
        table(
          "Messages in the poison queues (failed every retry; replay them with make replay-poison QUEUE=<queue>)",
          ["Queue", "Messages"],
          poison.map(([name, n]) => [name, num(n)]),
          {
            numeric: [1],
          },
        ),
      );
    }
    return parts;
  },
}).load();

// --- one user's records ---------------------------------------------------------------------

const userPanel = new Panel("user");
const input = h("input", {
  id: "user-id",
  name: "user_id",
  type: "text",
  required: true,
  spellcheck: "false",
  autocomplete: "off",
  "aria-describedby": "user-hint",
});
const problem = h("p", { id: "user-error", class: "error", role: "alert", hidden: true });
const out = h("div", { id: "user-out", class: "result", "aria-live": "polite" });
const currentId = () => {
  const value = input.value.trim().toLowerCase();
  if (isUuid(value)) {
    problem.hidden = true;
    input.removeAttribute("aria-invalid");
    return value;
  }
  problem.textContent = value
    ? `"${value.slice(0, 60)}" is not an id: ids are UUIDs.`
    : "Enter a user id first.";
  problem.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", "user-hint user-error");
  input.focus();
  return null;
};

/** A failed request shown as its state, in the output area. */
function failed(answer) {
  out.replaceChildren(stateBox(answer.kind === "ok" ? "bad" : answer.kind, answer.message));
}

// Disclosures, newest first, a page at a time.
async function showDisclosures(userId, cursor = null, rows = []) {
  if (!cursor) out.replaceChildren(stateBox("loading"));
  const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
  const answer = await request(`${API}/users/${userId}/disclosures${query}`);
  if (answer.kind !== "ok") return failed(answer);
  const all = [...rows, ...answer.data.disclosures];
  if (!all.length) {
    out.replaceChildren(stateBox("empty", "No one has read this person's records yet."));
    return;
  }
  const more = answer.data.next_cursor
    ? h("button", {
        type: "button",
        class: "secondary",
        text: "Show older",
        onclick: () => showDisclosures(userId, answer.data.next_cursor, all),
      })
    : null;
  out.replaceChildren(
    table(
      `Who read this person's records, and who was refused (${all.length}${more ? "+" : ""})`,
      ["When", "Who", "What", "Outcome", "Rule"],
      all.map((d) => [
        when(d.accessed_at),
        d.accessor,
        h("span", {}, d.action, h("br"), h("code", { text: d.resource })),
        h("span", {
          class: d.outcome === "refused" ? "badge failed" : "badge done",
          text: d.outcome === "refused" ? "Refused" : "Disclosed",
        }),
        d.rule || "—",
      ]),
      { className: "disclosures" },
    ),
    ...(more ? [more] : []),
  );
}

// The export: every page (next_cursor) joined into one JSON file, then downloaded.
async function downloadExport(userId) {
  const status = h("p", { role: "status", text: "Fetching the export, page 1…" });
  out.replaceChildren(status);
  const joined = {
    user_id: userId,
    exported_at: new Date().toISOString(),
    postgres: {},
    archive: [],
    realtime: null,
    pages: 0,
  };
  let cursor = null;
  do {
    const query = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : "?limit=1000";
    const answer = await request(`${API}/users/${userId}/export${query}`);
    if (answer.kind !== "ok") return failed(answer);
    const page = answer.data;
    for (const [table_, list] of Object.entries(page.postgres || {}))
      joined.postgres[table_] = [...(joined.postgres[table_] || []), ...list];
    joined.archive.push(...(page.archive || []));
    joined.realtime ??= page.realtime;
    joined.pages += 1;
    cursor = page.next_cursor;
    status.textContent = `Fetching the export, page ${joined.pages + 1}…`;
  } while (cursor);
  const rows = Object.values(joined.postgres).reduce((n, list) => n + list.length, 0);
  const name = `export-${userId}.json`;
  const url = URL.createObjectURL(new Blob([JSON.stringify(joined, null, 2)], { type: "application/json" }));
  const link = h("a", { href: url, download: name, text: `Download ${name} again` });
  out.replaceChildren(
    h("p", {
      role: "status",
      text: `Exported ${num(joined.pages)} page${joined.pages === 1 ? "" : "s"}: ${num(rows)} database rows, ${num(joined.archive.length)} archived events.`,
    }),
    h("p", {}, link),
  );
  link.click();
}

// Erasure, after typing the id again.
function confirmErasure(userId) {
  const again = h("input", {
    id: "erase-again",
    type: "text",
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "erase-why",
  });
  const go = h("button", { type: "submit", class: "danger", text: "Erase permanently", disabled: true });
  again.addEventListener("input", () => {
    go.disabled = again.value.trim().toLowerCase() !== userId;
  });
  const form = h(
    "form",
    { class: "confirm", "aria-labelledby": "erase-h" },
    h("h3", { id: "erase-h", text: "Erase this user?" }),
    h("p", {
      id: "erase-why",
      text: `Everything held about ${userId} goes from PostgreSQL, the archive and Redis, and their events still in flight are dropped. This cannot be undone. Type the id again to confirm.`,
    }),
    h("label", { for: "erase-again", text: "The user id, again" }),
    h(
      "div",
      { class: "inline" },
      again,
      go,
      h("button", {
        type: "button",
        class: "secondary",
        text: "Cancel",
        onclick: () => out.replaceChildren(),
      }),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (again.value.trim().toLowerCase() !== userId) return;
    go.disabled = true;
    out.replaceChildren(stateBox("loading"));
    const answer = await request(`${API}/users/${userId}`, { method: "DELETE" });
    if (answer.kind !== "ok") return failed(answer);
    const { erased, erased_at: at } = answer.data;
    out.replaceChildren(
      h(
        "div",
        { role: "status" },
        h("p", {}, h("strong", { text: "Erased. " }), "Erased at ", when(at), "."),
        table(
          "What was erased",
          ["Store", "Items"],
          [
            ["PostgreSQL", num(erased.postgres)],
            ["Archive", num(erased.archive)],
            ["Redis", num(erased.realtime)],
          ],
          { numeric: [1] },
        ),
      ),
    );
  });
  out.replaceChildren(form);
  again.focus();
}

const action = (text, fn, className = "") =>
  h("button", {
    type: "button",
    class: className || null,
    text,
    onclick: () => {
      const userId = currentId();
      if (userId) fn(userId);
    },
  });

userPanel.show(
  h(
    "form",
    {
      class: "user-form",
      onsubmit: (event) => {
        event.preventDefault();
        const userId = currentId();
        if (userId) showDisclosures(userId);
      },
    },
    h(
      "div",
      { class: "field" },
      h("label", { for: "user-id", text: "User id" }),
      h("p", { id: "user-hint", class: "hint", text: "A student's or a teacher's id (a UUID)." }),
      input,
    ),
    problem,
    h(
      "div",
      { class: "inline" },
      action("Show disclosures", showDisclosures),
      action("Download export", downloadExport, "secondary"),
      action("Erase…", confirmErasure, "danger"),
    ),
  ),
  out,
);
// A link from elsewhere may name the user: /api/dashboard/admin?user=<id>.
const named = new URLSearchParams(location.search).get("user");
if (named && isUuid(named)) input.value = named.toLowerCase();
