// Activity: events by type over time (minute, hour or day buckets, from the
// roll-ups), the forum's trending threads and top contributors.
import { API, Panel, Source, begin, chart, idRef, num, start, table } from "./app.js";

const TYPES = [
  "lesson_progress",
  "quiz_attempt",
  "forum_activity",
  "content_activity",
  "feedback",
  "live_class_engagement",
];
const TYPE_TEXT = {
  lesson_progress: "Lesson progress",
  quiz_attempt: "Quiz attempts",
  forum_activity: "Forum",
  content_activity: "Content",
  feedback: "Feedback",
  live_class_engagement: "Live classes",
};
// Each bucket size with the window it shows and how often the page asks again.
const SPANS = {
  minute: { ms: 60 * 60 * 1000, step: 60 * 1000, every: 60000 },
  hour: { ms: 24 * 3600 * 1000, step: 3600 * 1000, every: 60000 },
  day: { ms: 30 * 24 * 3600 * 1000, step: 24 * 3600 * 1000, every: 300000 },
};
const LABEL = {
  minute: new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" }),
  hour: new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  }),
  day: new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" }),
};

await start();
const radios = [...document.querySelectorAll('input[name="bucket"]')];
const chosen = () => radios.find((r) => r.checked)?.value || "hour";

function activityUrl() {
  const bucket = chosen();
  const { ms, step } = SPANS[bucket];
  // Whole buckets, ending with the current one (its count grows as the roll-ups land).
  const to = new Date(Math.ceil(Date.now() / step) * step);
  const from = new Date(to.getTime() - ms);
  return `${API}/reports/activity?bucket=${bucket}&from=${from.toISOString()}&to=${to.toISOString()}`;
}

const events = new Source(activityUrl, new Panel("events"), {
  every: SPANS.hour.every,
  gate: true,
  isEmpty: (data) => data.buckets.length === 0,
  empty: "No events in this window.",
  render: (data) => {
    const types = [
      ...TYPES.filter((t) => t in data.totals),
      ...Object.keys(data.totals).filter((t) => !TYPES.includes(t)),
    ];
    const format = LABEL[data.bucket];
    // Every bucket of the window, the empty ones too: time runs evenly along the axis.
    const byStart = new Map(data.buckets.map((b) => [Date.parse(b.bucket_start), b]));
    const buckets = [];
    const step = SPANS[data.bucket].step;
    for (let t = Date.parse(data.from); t < Date.parse(data.to); t += step) {
      buckets.push(byStart.get(t) || { bucket_start: new Date(t).toISOString(), counts: {}, total: 0 });
    }
    return [
      chart({
        caption: `Unique events by type per ${data.bucket}`,
        labels: buckets.map((b) => format.format(new Date(b.bucket_start))),
        labelHeader: `${data.bucket[0].toUpperCase()}${data.bucket.slice(1)} starting`,
        series: [
          ...types.map((t) => ({ label: TYPE_TEXT[t] || t, data: buckets.map((b) => b.counts[t] || 0) })),
        ],
        stacked: true,
        tall: true,
      }),
      table(
        "Totals in the window",
        ["Type", "Events"],
        [
          ...types.map((t) => [TYPE_TEXT[t] || t, num(data.totals[t])]),
          ["All", num(Object.values(data.totals).reduce((a, b) => a + b, 0))],
        ],
        { numeric: [1] },
      ),
    ];
  },
});

for (const radio of radios) {
  radio.addEventListener("change", () => {
    events.every = SPANS[chosen()].every;
    events.last = null;
    events.panel.state("loading");
    events.load();
  });
}

const trending = new Source(`${API}/reports/forum/trending?hours=24&limit=10`, new Panel("trending"), {
  every: 60000,
  isEmpty: (data) => data.threads.length === 0,
  empty: "No forum activity in the last 24 hours.",
  render: (data) =>
    table(
      "Threads by actions in the last 24 hours",
      ["Thread", "Actions", "Posts", "Replies", "Likes"],
      data.threads.map((t) => [
        idRef(t.thread_id),
        num(t.actions),
        num(t.posts),
        num(t.replies),
        num(t.likes),
      ]),
      { numeric: [1, 2, 3, 4] },
    ),
});

const contributors = new Source(
  `${API}/reports/forum/contributors?days=7&limit=10`,
  new Panel("contributors"),
  {
    every: 60000,
    isEmpty: (data) => data.contributors.length === 0,
    empty: "No posts or replies in the last 7 days.",
    render: (data) =>
      table(
        "Users by posts and replies in the last 7 days",
        ["User", "Posts + replies", "Posts", "Replies", "Likes received"],
        data.contributors.map((c) => [
          idRef(c.user_id),
          num(c.contributions),
          num(c.posts),
          num(c.replies),
          num(c.likes_received),
        ]),
        { numeric: [1, 2, 3, 4] },
      ),
  },
);

await begin(events, trending, contributors);
