// A teacher's page: the teacher report with charts, and (for the teacher themselves,
// an admin or a program) their lessons, quizzes, live sessions and students.
import {
  API,
  Panel,
  Source,
  begin,
  chart,
  duration,
  h,
  idRef,
  mayReadOwnRecord,
  num,
  pageId,
  start,
  stats,
  when,
} from "./app.js";

const TYPES = ["lesson", "quiz", "assignment"];
const FEEDBACK = ["text", "rubric", "audio"];
const PAGE_OF = { lesson: "lessons", quiz: "quizzes" };

const me = await start();
const id = pageId("teachers", "Teacher");
if (id) {
  const feedback = new Panel("feedback");
  const live = new Panel("live");
  const keys = (counts, known) => [...known, ...Object.keys(counts).filter((k) => !known.includes(k))];

  const report = new Source(`${API}/reports/teachers/${id}`, new Panel("content"), {
    every: 60000,
    gate: true,
    also: [feedback, live],
    onData: (data) => {
      const given = keys(data.feedback_given, FEEDBACK);
      const total = given.reduce((sum, k) => sum + (data.feedback_given[k] || 0), 0);
      if (!total) feedback.state("empty", "No feedback given yet.");
      else {
        feedback.show(
          stats([
            ["Feedback given", num(total)],
            ["Average score given", num(data.avg_feedback_score)],
          ]),
          chart({
            caption: "Feedback given by type",
            labels: given,
            labelHeader: "Type",
            series: [{ label: "Feedback", data: given.map((k) => data.feedback_given[k] || 0) }],
          }),
        );
      }
      if (!data.live_sessions) live.state("empty", "No live class yet.");
      else {
        live.show(
          stats([
            ["Sessions", num(data.live_sessions)],
            ["Time in class", duration(data.live_seconds)],
            ["Polls launched", num(data.polls_launched)],
            ["Messages sent", num(data.messages_sent)],
          ]),
        );
      }
      for (const panel of [feedback, live]) panel.changed(false);
    },
    isEmpty: (data) =>
      Object.values(data.content_created).every((n) => !n) &&
      Object.values(data.content_updated).every((n) => !n),
    empty: "No lesson, quiz or assignment created yet.",
    render: (data) => {
      const types = keys({ ...data.content_created, ...data.content_updated }, TYPES);
      return chart({
        caption: "Content created and updated, by type",
        labels: types,
        labelHeader: "Type",
        series: [
          { label: "Created", data: types.map((k) => data.content_created[k] || 0) },
          { label: "Updated", data: types.map((k) => data.content_updated[k] || 0) },
        ],
      });
    },
  });

  const classesPanel = new Panel("classes");
  const overview = mayReadOwnRecord(me, id)
    ? new Source(`${API}/users/${id}/overview`, classesPanel, {
        notFound: [
          "notfound",
          "The list of lessons, quizzes and sessions is not available from this service yet.",
        ],
        isEmpty: (data) => !data.content.length && !data.live_sessions.length && !data.students.length,
        empty: "No lesson, quiz, session or student yet.",
        render: (data) => [
          h("h3", { text: "Lessons, quizzes and assignments" }),
          data.content.length
            ? h(
                "ul",
                { class: "links" },
                data.content.map((c) =>
                  h(
                    "li",
                    {},
                    PAGE_OF[c.content_type]
                      ? h("a", {
                          href: `/api/dashboard/${PAGE_OF[c.content_type]}/${c.content_id}`,
                          title: c.content_id,
                          text: c.title || c.content_id.slice(0, 8),
                        })
                      : h("span", { title: c.content_id, text: c.title || c.content_id.slice(0, 8) }),
                    ` (${c.content_type}) · changed `,
                    when(c.last_changed_at),
                  ),
                ),
              )
            : h("p", { class: "meta", text: "None yet." }),
          h("h3", { text: "Live sessions" }),
          data.live_sessions.length
            ? h(
                "ul",
                { class: "links" },
                data.live_sessions.map((s) =>
                  h("li", {}, "Session ", idRef(s.session_id, "live"), " · joined ", when(s.joined_at)),
                ),
              )
            : h("p", { class: "meta", text: "None yet." }),
          h("h3", { text: "Students" }),
          data.students.length
            ? h(
                "ul",
                { class: "links" },
                data.students.map((s) =>
                  h(
                    "li",
                    {},
                    "Student ",
                    idRef(s.student_id, "students"),
                    " · last seen ",
                    when(s.last_seen_at),
                  ),
                ),
              )
            : h("p", { class: "meta", text: "None yet." }),
        ],
      })
    : null;
  if (!overview) classesPanel.state("note", "The list is shown to the teacher and to administrators.");

  await begin(report, overview);
}
