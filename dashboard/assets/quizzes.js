// A quiz's page: the leaderboard (live), the distribution of best scores, the pass
// rate and scores, and the answers given to each question.
import {
  API,
  LIVE,
  Panel,
  Source,
  begin,
  chart,
  duration,
  follow,
  h,
  idRef,
  nameFromOverview,
  num,
  pageId,
  share,
  start,
  stats,
  table,
} from "./app.js";

const BOARD_LIMIT = 100; // the API's most: the distribution is drawn from the same answer

const me = await start();
const id = pageId("quizzes", "Quiz");
if (id) {
  const studentOnly =
    me && me.roles.includes("Student") && !me.roles.some((r) => ["Teacher", "Admin", "Service"].includes(r));
  const distribution = new Panel("distribution");

  const board = new Source(
    `${API}/quizzes/${id}/leaderboard?limit=${BOARD_LIMIT}`,
    new Panel("leaderboard"),
    {
      every: LIVE,
      gate: true,
      also: [distribution],
      onData: (data) => showDistribution(data),
      isEmpty: (data) => data.entries.length === 0,
      empty: "No attempt yet.",
      render: (data) => {
        const entries = [...data.entries];
        const viewer = data.viewer;
        // A student sees their own entry also when it ranks outside the list.
        if (viewer && !entries.some((e) => e.student_id === viewer.student_id)) entries.push(viewer);
        const rows = entries.slice(0, 10);
        if (viewer && !rows.some((e) => e.student_id === viewer.student_id)) rows.push(viewer);
        const tableEl = table(
          `Best score per student${entries.length > 10 ? " (top 10)" : ""}`,
          ["Rank", "Student", "Best score", "Attempts"],
          rows.map((e) => [
            num(e.rank),
            viewer && e.student_id === viewer.student_id
              ? h("span", {}, idRef(e.student_id, "students"), h("span", { class: "you", text: "(you)" }))
              : idRef(e.student_id, e.student_id ? "students" : null),
            num(e.best_score),
            num(e.attempts),
          ]),
          { numeric: [0, 2, 3] },
        );
        // Mark the viewer's row (a class, and the words "(you)" above).
        if (viewer) {
          for (const row of tableEl.querySelectorAll("tbody tr")) {
            if (row.querySelector(`[title="${viewer.student_id}"]`)) row.classList.add("viewer");
          }
        }
        return tableEl;
      },
    },
  );

  function showDistribution(data) {
    const scores = data.entries.map((e) => e.best_score);
    if (!scores.length) {
      distribution.state("empty", "No attempt yet.");
      return;
    }
    const max = Math.max(...scores);
    const integral = scores.every((s) => Number.isInteger(s)) && max <= 20;
    const width = integral ? 1 : Math.max(max / 10, 1e-9);
    const bins = integral ? max + 1 : 10;
    const counts = new Array(bins).fill(0);
    for (const score of scores) counts[Math.min(bins - 1, Math.floor(score / width))] += 1;
    const labels = counts.map((_, i) => (integral ? String(i) : `${num(i * width)}–${num((i + 1) * width)}`));
    distribution.show(
      chart({
        caption: `Students by best score (${scores.length} on the leaderboard)`,
        labels,
        labelHeader: "Best score",
        series: [{ label: "Students", data: counts }],
      }),
    );
    distribution.changed(true);
  }

  const summaryPanel = new Panel("summary");
  const answersPanel = new Panel("answers");
  let report = null;
  if (studentOnly) {
    // The report is the quiz's teacher's: a student would only be refused (and it would be logged).
    summaryPanel.state("note", "The pass rate and the answers are shown to the quiz's teacher.");
    answersPanel.state("note", "The answers per question are shown to the quiz's teacher.");
  } else {
    report = new Source(`${API}/reports/quizzes/${id}`, summaryPanel, {
      also: [answersPanel],
      onData: (data) => showAnswers(data.answer_distribution),
      isEmpty: (data) => data.attempts === 0,
      empty: "No attempt yet.",
      render: (data) =>
        stats([
          ["Pass rate", share(data.pass_rate)],
          ["Attempts", num(data.attempts)],
          ["Students", num(data.students)],
          ["Average score", num(data.avg_score)],
          ["Median score", num(data.median_score)],
          ["Average attempts to pass", num(data.avg_attempts_to_pass)],
          ["Average duration", duration(data.avg_duration_seconds)],
        ]),
    });
  }

  function showAnswers(questions) {
    const names = Object.keys(questions).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    if (!names.length) {
      answersPanel.state("empty", "No answers yet.");
      return;
    }
    const shown = names.slice(0, 24);
    const figures = shown.map((question) => {
      const answers = Object.entries(questions[question]).sort((a, b) => b[1] - a[1]);
      return h(
        "div",
        { class: "question-figure" },
        chart({
          caption: `Question ${question}: attempts per answer`,
          labels: answers.map(([answer]) => answer),
          labelHeader: "Answer",
          series: [{ label: "Attempts", data: answers.map(([, count]) => count) }],
          horizontal: true,
        }),
      );
    });
    answersPanel.show(
      h("div", { class: "grid" }, figures),
      names.length > shown.length
        ? h("p", { class: "meta", text: `The first ${shown.length} of ${names.length} questions.` })
        : null,
    );
    answersPanel.changed(false);
  }

  if (await begin(board, report)) {
    if (report) follow(report, board);
    nameFromOverview(me, id, "Quiz");
  }
}
