// The start page: what the signed-in person may open (from their own overview),
// and a box to open any page by id.
import {
  API,
  BASE,
  Panel,
  Source,
  h,
  idForm,
  idRef,
  num,
  pct,
  signInHref,
  start,
  storedKey,
  when,
} from "./app.js";

const KINDS = [
  ["students", "Student"],
  ["quizzes", "Quiz"],
  ["lessons", "Lesson"],
  ["teachers", "Teacher"],
  ["live", "Live session"],
];
const PAGE_OF = { lesson: "lessons", quiz: "quizzes" };

const me = await start();
new Panel("open").show(
  idForm(KINDS, "Page", "", { bare: true }),
  h(
    "ul",
    { class: "links" },
    h(
      "li",
      {},
      h("a", { href: `${BASE}/activity`, text: "Activity" }),
      ": events over time, forum trending and top contributors",
    ),
    h(
      "li",
      {},
      h("a", { href: `${BASE}/admin`, text: "Administration" }),
      ": health; a user's export, disclosures and erasure",
    ),
    h(
      "li",
      {},
      h("a", { href: `${BASE}/demo`, text: "Demo" }),
      ": be a student in a toy lesson and watch the pages change",
    ),
  ),
);

const mine = new Panel("mine");
const section = (title, items, render) => [
  h("h3", { text: title }),
  items.length
    ? h(
        "ul",
        { class: "links" },
        items.map((item) => h("li", {}, render(item))),
      )
    : h("p", { class: "meta", text: "None yet." }),
];

if (!me) {
  mine.show(
    h(
      "div",
      { class: "state state-signin", "data-state": "signin" },
      h("p", { class: "state-title", text: "You are not signed in" }),
      h("p", {
        class: "state-detail",
        text: storedKey()
          ? "You are using a function key: open any page by its id."
          : "Sign in to see your own lessons, quizzes, sessions and students, or open a page by its id.",
      }),
      h("p", {}, h("a", { href: signInHref(), class: "button", text: "Sign in" })),
    ),
  );
} else {
  const roles = new Set(me.roles);
  const links = [
    roles.has("Student")
      ? h("li", {}, h("a", { href: `${BASE}/students/${me.id}`, text: "Your progress and reports" }))
      : null,
    roles.has("Teacher")
      ? h("li", {}, h("a", { href: `${BASE}/teachers/${me.id}`, text: "Your teacher report" }))
      : null,
    roles.has("Admin") ? h("li", {}, h("a", { href: `${BASE}/admin`, text: "Administration" })) : null,
    roles.has("Teacher") || roles.has("Admin")
      ? h("li", {}, h("a", { href: `${BASE}/activity`, text: "Activity across the platform" }))
      : null,
  ];
  new Source(`${API}/users/${me.id}/overview`, mine, {
    notFound: [
      "notfound",
      "Your overview is not available from this service yet: open a page by its id below.",
    ],
    render: (data) => [
      h("ul", { class: "links" }, links),
      roles.has("Teacher") || data.content.length
        ? section("Your lessons, quizzes and assignments", data.content, (c) => [
            PAGE_OF[c.content_type]
              ? h("a", {
                  href: `${BASE}/${PAGE_OF[c.content_type]}/${c.content_id}`,
                  title: c.content_id,
                  text: c.title || c.content_id.slice(0, 8),
                })
              : h("span", { title: c.content_id, text: c.title || c.content_id.slice(0, 8) }),
            ` (${c.content_type})`,
          ])
        : null,
      roles.has("Teacher") || data.live_sessions.length
        ? section("Your live sessions", data.live_sessions, (s) => [
            "Session ",
            idRef(s.session_id, "live"),
            " · joined ",
            when(s.joined_at),
          ])
        : null,
      roles.has("Teacher") || data.students.length
        ? section("Your students", data.students, (s) => [
            "Student ",
            idRef(s.student_id, "students"),
            " · last seen ",
            when(s.last_seen_at),
          ])
        : null,
      roles.has("Student") || data.lessons.length
        ? section("Your lessons", data.lessons, (l) => [
            h("span", { title: l.lesson_id, text: l.title || l.lesson_id.slice(0, 8) }),
            ` · ${l.completed_at ? "completed" : pct(l.progress_percent)}`,
          ])
        : null,
      roles.has("Student") || data.quizzes.length
        ? section("Your quizzes", data.quizzes, (q) => [
            h("a", {
              href: `${BASE}/quizzes/${q.quiz_id}`,
              title: q.quiz_id,
              text: q.title || q.quiz_id.slice(0, 8),
            }),
            ` · best ${num(q.best_score)} in ${num(q.attempts)} attempt${q.attempts === 1 ? "" : "s"}${q.passed ? ", passed" : ""}`,
          ])
        : null,
    ],
  }).load();
}
