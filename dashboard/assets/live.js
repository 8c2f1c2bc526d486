// A live class: who is in, for how long, the polls and messages (all live).
import {
  API,
  LIVE,
  Panel,
  Source,
  begin,
  duration,
  h,
  idRef,
  num,
  pageId,
  start,
  stats,
  table,
  when,
} from "./app.js";

await start();
const id = pageId("live", "Live session");
if (id) {
  const now = new Panel("now");
  // "In for" of the teachers still in grows every second without asking the server.
  const since = (iso) =>
    h("span", { class: "since", "data-since": iso }, duration((Date.now() - Date.parse(iso)) / 1000));
  setInterval(() => {
    if (document.hidden) return;
    for (const el of document.querySelectorAll("[data-since]")) {
      el.textContent = duration((Date.now() - Date.parse(el.dataset.since)) / 1000);
    }
  }, 1000);

  const session = new Source(`${API}/live/sessions/${id}`, new Panel("teachers"), {
    every: LIVE,
    gate: true,
    also: [now],
    // 404: no teacher has joined yet; the first event creates the session, so keep asking.
    notFound: ["empty", "No one has joined this session yet."],
    onData: (data) => {
      const inNow = data.teachers.filter((t) => t.active);
      now.show(
        stats([
          ["Teachers in now", num(inNow.length)],
          ["Polls launched", num(data.teachers.reduce((sum, t) => sum + t.polls_launched.length, 0))],
          ["Messages sent", num(data.teachers.reduce((sum, t) => sum + t.messages_sent, 0))],
        ]),
        h(
          "p",
          {},
          inNow.length
            ? ["In now: ", inNow.map((t, i) => [i ? ", " : "", idRef(t.teacher_id, "teachers")])]
            : "No teacher is in the class now.",
        ),
        h("p", { class: "meta" }, "Class ", idRef(data.class_id)),
      );
      now.changed(true);
    },
    isEmpty: (data) => data.teachers.length === 0,
    empty: "No one has joined this session yet.",
    render: (data) =>
      table(
        "Teachers: when they joined, how long they have been in, polls and messages",
        ["Teacher", "Status", "Joined", "In for", "Polls", "Messages"],
        data.teachers.map((t) => [
          idRef(t.teacher_id, "teachers"),
          t.active
            ? h("span", { class: "badge in", text: "In now" })
            : h("span", { class: "badge left" }, "Left ", when(t.left_at)),
          when(t.joined_at),
          t.active ? since(t.joined_at) : duration(t.duration_seconds),
          num(t.polls_launched.length),
          num(t.messages_sent),
        ]),
        { numeric: [3, 4, 5] },
      ),
  });

  await begin(session);
}
