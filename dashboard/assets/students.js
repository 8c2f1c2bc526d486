// A student's page: lesson progress (live), notifications (live), quiz results,
// recommendations with their reasons, and the student report.
import {
  API,
  LIVE,
  Panel,
  begin,
  Source,
  duration,
  follow,
  h,
  idRef,
  mayReadOwnRecord,
  num,
  pageId,
  pct,
  stats,
  table,
  start,
  when,
} from "./app.js";

const KIND_TEXT = { resume_lesson: "Resume lesson", retry_quiz: "Retry quiz", next_lesson: "Next lesson" };
const TYPE_TEXT = {
  lesson_progress: "Lesson progress",
  quiz_attempt: "Quiz attempt",
  forum_activity: "Forum",
  content_activity: "Content",
  feedback: "Feedback",
  live_class_engagement: "Live class",
};

const me = await start();
const id = pageId("students", "Student");
if (id) {
  // Lessons are a teacher's pages: link them for whoever may open them.
  const teacherish = !me || me.roles.some((role) => ["Teacher", "Admin", "Service"].includes(role));
  const titles = new Map();
  const named = (thing, kind) => {
    const title = titles.get(thing);
    return title ? h("span", {}, `${title} `, idRef(thing, kind)) : h("span", {}, idRef(thing, kind));
  };

  const progress = new Source(`${API}/students/${id}/progress`, new Panel("progress"), {
    every: LIVE,
    gate: true,
    isEmpty: (data) => data.lessons.length === 0,
    empty: "No lesson opened yet.",
    render: (data) =>
      h(
        "ul",
        { class: "items" },
        data.lessons.map((lesson) => {
          const labelId = `lesson-${lesson.lesson_id}`;
          const done = Boolean(lesson.completed_at);
          return h(
            "li",
            { "data-id": lesson.lesson_id },
            h(
              "div",
              { class: "item-head" },
              h(
                "span",
                { class: "item-name", id: labelId },
                named(lesson.lesson_id, teacherish ? "lessons" : null),
              ),
              h("span", { class: "pct" }, pct(lesson.progress_percent)),
            ),
            h("progress", {
              max: "100",
              value: lesson.progress_percent,
              class: done ? "done" : null,
              "aria-labelledby": labelId,
            }),
            h(
              "p",
              { class: "meta" },
              done
                ? h("span", { class: "badge done", text: "Completed" })
                : h("span", { class: "badge open", text: "In progress" }),
              ` ${lesson.sections_read.length} section${lesson.sections_read.length === 1 ? "" : "s"} read · `,
              `video ${duration(lesson.video_watch_time)} · last opened `,
              when(lesson.last_accessed_at),
            ),
          );
        }),
      ),
  });

  const notificationsPanel = new Panel("notifications");
  const notifications = mayReadOwnRecord(me, id)
    ? new Source(`${API}/users/${id}/notifications?limit=20`, notificationsPanel, {
        every: LIVE,
        isEmpty: (data) => data.notifications.length === 0,
        empty: "No replies or likes yet.",
        render: (data) =>
          h(
            "ul",
            { class: "items" },
            data.notifications.map((item) =>
              h(
                "li",
                { "data-id": item.event_id },
                h("span", { class: `badge ${item.type}`, text: item.type === "reply" ? "Reply" : "Like" }),
                " by ",
                idRef(item.actor_id),
                " on post ",
                idRef(item.post_id),
                h("p", { class: "meta" }, when(item.created_at)),
              ),
            ),
          ),
      })
    : null;

  // Titles and per-quiz results: the person's own overview (the student, an admin, a program).
  const quizzesPanel = new Panel("quizzes");
  const overview = mayReadOwnRecord(me, id)
    ? new Source(`${API}/users/${id}/overview`, quizzesPanel, {
        notFound: [
          "notfound",
          "Per-quiz results are not available from this service yet; the totals are in the report.",
        ],
        onData: (data) => {
          for (const lesson of data.lessons) if (lesson.title) titles.set(lesson.lesson_id, lesson.title);
          for (const quiz of data.quizzes) if (quiz.title) titles.set(quiz.quiz_id, quiz.title);
          for (const source of [progress, recommendations]) source.rerender();
        },
        isEmpty: (data) => data.quizzes.length === 0,
        empty: "No quiz attempted yet.",
        render: (data) =>
          h(
            "ul",
            { class: "items" },
            data.quizzes.map((quiz) =>
              h(
                "li",
                { "data-id": quiz.quiz_id },
                h(
                  "div",
                  { class: "item-head" },
                  h("span", { class: "item-name" }, named(quiz.quiz_id, "quizzes")),
                  h("span", {
                    class: quiz.passed ? "badge done" : "badge failed",
                    text: quiz.passed ? "Passed" : "Not passed yet",
                  }),
                ),
                h(
                  "p",
                  { class: "meta" },
                  `best score ${num(quiz.best_score)} · ${num(quiz.attempts)} attempt${quiz.attempts === 1 ? "" : "s"} · last `,
                  when(quiz.last_submitted_at),
                ),
              ),
            ),
          ),
      })
    : null;

  const recommendations = new Source(
    `${API}/students/${id}/recommendations?limit=5`,
    new Panel("recommendations"),
    {
      isEmpty: (data) => data.items.length === 0,
      empty: "Nothing to recommend yet.",
      render: (data) =>
        h(
          "ol",
          { class: "items" },
          data.items.map((item) =>
            h(
              "li",
              { "data-id": item.id },
              h(
                "div",
                { class: "item-head" },
                h(
                  "span",
                  { class: "item-name" },
                  `${KIND_TEXT[item.kind] || item.kind}: `,
                  named(item.id, item.kind === "retry_quiz" ? "quizzes" : teacherish ? "lessons" : null),
                ),
                h("span", { class: "meta", text: `score ${num(item.score)}` }),
              ),
              h("p", { class: "reason", text: item.reason }),
            ),
          ),
        ),
    },
  );

  const report = new Source(`${API}/reports/students/${id}`, new Panel("report"), {
    render: (data) => [
      stats([
        ["Lessons started", num(data.lessons_started)],
        ["Lessons completed", num(data.lessons_completed)],
        ["Average progress", pct(data.avg_progress_percent)],
        ["Video watched", duration(data.total_video_watch_time)],
        ["Quiz attempts", num(data.quiz_attempts)],
        ["Quizzes passed", num(data.quizzes_passed)],
        ["Average quiz score", num(data.avg_quiz_score)],
        ["Forum posts", num(data.forum_posts)],
        ["Forum replies", num(data.forum_replies)],
        ["Likes given", num(data.likes_given)],
        ["Likes received", num(data.likes_received)],
        ["Feedback received", num(data.feedback_received)],
        ["Average feedback score", num(data.avg_feedback_score)],
      ]),
      data.recent_activity.length
        ? table(
            "Recent activity (newest first)",
            ["When", "What", "By"],
            data.recent_activity.map((item) => [
              when(item.occurred_at),
              TYPE_TEXT[item.type] || item.type,
              idRef(item.actor_id),
            ]),
          )
        : h("p", { class: "meta", text: "No recent activity." }),
    ],
  });

  if (!overview)
    quizzesPanel.state(
      "note",
      "Per-quiz results are shown to the student and to administrators; the totals are in the report below.",
    );
  if (!notifications) notificationsPanel.state("note", "Notifications are shown to the student only.");
  // The first request decides: refused or not signed in, and nothing else is asked.
  if (await begin(progress, notifications, overview, recommendations, report)) {
    follow(report, progress);
    if (notifications) follow(report, notifications);
    follow(recommendations, progress);
  }
}
