// A lesson's page: each student's progress bar (live), completion, readers per
// section, progress over time, and cohorts by the week they started.
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
  num,
  pageId,
  pct,
  share,
  nameFromOverview,
  start,
  stats,
  table,
  when,
} from "./app.js";

const me = await start();
const id = pageId("lessons", "Lesson");
if (id) {
  const sections = new Panel("sections");
  const overTime = new Panel("over-time");

  const students = new Source(`${API}/lessons/${id}/progress?limit=100`, new Panel("students"), {
    every: LIVE,
    gate: true,
    isEmpty: (data) => data.students.length === 0,
    empty: "No student has opened this lesson yet.",
    render: (data) =>
      h(
        "ul",
        { class: "items" },
        data.students.map((student) => {
          const labelId = `student-${student.student_id}`;
          const done = Boolean(student.completed_at);
          return h(
            "li",
            { "data-id": student.student_id },
            h(
              "div",
              { class: "item-head" },
              h(
                "span",
                { class: "item-name", id: labelId },
                "Student ",
                idRef(student.student_id, "students"),
              ),
              h("span", { class: "pct" }, pct(student.progress_percent)),
            ),
            h("progress", {
              max: "100",
              value: student.progress_percent,
              class: done ? "done" : null,
              "aria-labelledby": labelId,
            }),
            h(
              "p",
              { class: "meta" },
              done
                ? h("span", { class: "badge done", text: "Completed" })
                : h("span", { class: "badge open", text: "In progress" }),
              ` ${student.sections_read.length} section${student.sections_read.length === 1 ? "" : "s"} read · video ${duration(student.video_watch_time)} · last opened `,
              when(student.last_accessed_at),
            ),
          );
        }),
      ),
  });

  const report = new Source(`${API}/reports/lessons/${id}?days=30`, new Panel("completion"), {
    also: [sections, overTime],
    onData: (data) => {
      const names = Object.keys(data.section_readers);
      if (!names.length) sections.state("empty", "No section read yet.");
      else {
        sections.show(
          chart({
            caption: "Students who read each section",
            labels: names,
            labelHeader: "Section",
            series: [{ label: "Readers", data: names.map((name) => data.section_readers[name]) }],
            horizontal: true,
            tall: names.length > 8,
          }),
        );
      }
      const days = data.progress_over_time;
      if (!days.length) overTime.state("empty", "No activity in the last 30 days.");
      else {
        overTime.show(
          chart({
            caption: "Active students and their average progress per day (last 30 days)",
            type: "line",
            labels: days.map((d) => d.day),
            labelHeader: "Day (UTC)",
            series: [
              { label: "Active students", data: days.map((d) => d.active_students), axis: "y" },
              {
                label: "Average progress (%)",
                data: days.map((d) => d.avg_progress_percent),
                axis: "percent",
              },
            ],
            format: (value, series) => (series.axis === "percent" ? pct(value) : num(value)),
            axes: {
              x: { ticks: { color: "#333", maxRotation: 0, autoSkip: true } },
              y: {
                beginAtZero: true,
                position: "left",
                ticks: { color: "#333", precision: 0 },
                title: { display: true, text: "Students", color: "#333" },
              },
              percent: {
                beginAtZero: true,
                max: 100,
                position: "right",
                grid: { drawOnChartArea: false },
                ticks: { color: "#333" },
                title: { display: true, text: "Average progress (%)", color: "#333" },
              },
            },
          }),
        );
      }
      for (const panel of [sections, overTime]) panel.changed(false);
    },
    isEmpty: (data) => data.students_started === 0,
    empty: "No student has started this lesson yet.",
    render: (data) =>
      stats([
        ["Started", num(data.students_started)],
        ["Completed", num(data.students_completed)],
        ["Completion rate", share(data.completion_rate)],
        ["Average progress", pct(data.avg_progress_percent)],
        ["Average video time", duration(data.avg_video_watch_time)],
      ]),
  });

  const cohorts = new Source(`${API}/reports/cohorts/lessons/${id}`, new Panel("cohorts"), {
    isEmpty: (data) => data.cohorts.length === 0,
    empty: "No student has started this lesson yet.",
    render: (data) =>
      table(
        "Share of each week's starters who completed the lesson within 1, 2 and 4 weeks",
        ["Week", "Students", "1 week", "2 weeks", "4 weeks"],
        data.cohorts.map((c) => [
          h("span", { title: `week starting ${c.week_start}` }, c.week),
          num(c.students),
          share(c.completed_within_1_week),
          share(c.completed_within_2_weeks),
          share(c.completed_within_4_weeks),
        ]),
        { numeric: [1, 2, 3, 4] },
      ),
  });

  if (await begin(students, report, cohorts)) {
    follow(report, students);
    follow(cohorts, students, { gap: 60000 });
    nameFromOverview(me, id, "Lesson");
  }
}
