// The demo: a person acts as a student in a toy lesson and quiz. Every step is an
// event sent by the browser tracker (clients/js, served as assets/tracker.js); the
// student's, lesson's, quiz's and teacher's pages, open in another tab, change with it.
import { createTracker } from "/api/dashboard/assets/tracker.js";
import {
  API,
  BASE,
  Panel,
  h,
  idRef,
  newId,
  page,
  pct,
  request,
  signInHref,
  start,
  storedKey,
} from "./app.js";

const STORE = "dashboard.demo";
const LESSON_TITLE = "Adding fractions";
const QUIZ_TITLE = "Fractions check";
const SECTIONS = [
  [
    "what-a-fraction-is",
    "What a fraction is",
    "A fraction names equal parts of a whole: 3/4 is three of four equal parts.",
  ],
  [
    "common-denominator",
    "A common denominator",
    "To add 1/2 and 1/3, cut both wholes into sixths: 1/2 = 3/6 and 1/3 = 2/6.",
  ],
  ["adding", "Adding", "With the same denominator, add the numerators: 3/6 + 2/6 = 5/6."],
];
const QUESTIONS = [
  ["q1", "What is 1/2 + 1/4?", ["2/6", "3/4", "1/8"], "3/4"],
  ["q2", "Which is the same as 2/4?", ["1/2", "2/8", "4/2"], "1/2"],
  ["q3", "What is 1/3 + 1/3?", ["2/6", "1/9", "2/3"], "2/3"],
];
const PASS = 2;
const now = () => new Date().toISOString();

const me = await start();
const roles = new Set(me?.roles || []);
// A program's key, or an admin, may send anyone's events: the demo makes up a student and a teacher.
const anyone = !me || roles.has("Admin") || roles.has("Service");
const saved = JSON.parse(localStorage.getItem(STORE) || "{}");
const state = {
  lesson: saved.lesson || newId(),
  quiz: saved.quiz || newId(),
  student: anyone ? saved.student || newId() : roles.has("Student") ? me.id : null,
  teacher: anyone ? saved.teacher || newId() : roles.has("Teacher") ? me.id : null,
  created: saved.created || [],
  startedAt: null,
  read: [],
  video: 0,
  attempts: 0,
};
if (saved.student === state.student)
  Object.assign(state, {
    startedAt: saved.startedAt,
    read: saved.read || [],
    video: saved.video || 0,
    attempts: saved.attempts || 0,
  });
const save = () => localStorage.setItem(STORE, JSON.stringify(state));
save();

const whoPanel = new Panel("who-demo");
const lessonPanel = new Panel("lesson");
const quizPanel = new Panel("quiz");
const forumPanel = new Panel("forum");
const sentPanel = new Panel("sent");

if (!state.student) {
  page.halt("signin", "");
  document.querySelector("#page-state .state-detail").textContent =
    "The demo acts as a student: sign in with the Student role (add Teacher to see the lesson's and quiz's teacher pages too).";
} else {
  // Ask once for what the tracker will need (a key in keys mode, a sign-in in principal mode).
  const probe = await request(`${API}/students/${state.student}/progress`);
  if (probe.kind === "signin" || probe.kind === "refused") page.halt(probe.kind, probe.message);
  else run();
}

function run() {
  const tracker = createTracker({
    endpoint: `${API}/events`,
    headers: () => (storedKey() ? { "x-functions-key": storedKey() } : {}),
    credentials: "same-origin",
    maxBatch: 100,
    flushInterval: 1000,
  });

  // --- who, and the pages to watch -------------------------------------------------------
  const canSeeTeacherPages = Boolean(state.teacher) && (anyone || roles.has("Teacher"));
  const open = (href, text) =>
    h(
      "a",
      { href, target: "_blank", rel: "noopener" },
      text,
      h("span", { class: "visually-hidden", text: " (opens in a new tab)" }),
    );
  // The lesson's and teacher's pages: a signed-in teacher may open them once the lesson is
  // stored (their own overview lists it), or they would be refused; a key may at once.
  const teacherLinks = h("li", {
    text: canSeeTeacherPages
      ? "The lesson's and the teacher's pages: ready once the toy lesson is stored…"
      : "The lesson's and the teacher's pages are the teacher's: sign in with both the Student and the Teacher role to watch them too.",
  });
  const showTeacherLinks = () =>
    teacherLinks.replaceChildren(
      open(`${BASE}/lessons/${state.lesson}`, "The lesson's page"),
      ": every student's progress bar; ",
      open(`${BASE}/teachers/${state.teacher}`, "The teacher's page"),
      ": the teacher report",
    );
  whoPanel.show(
    h(
      "p",
      {},
      "You are student ",
      idRef(state.student),
      state.teacher ? ["; the toy lesson and quiz are by teacher ", idRef(state.teacher)] : "",
      anyone ? " (made up for this demo: the key may send anyone's events)." : ".",
    ),
    h(
      "ul",
      { class: "links" },
      h(
        "li",
        {},
        open(`${BASE}/students/${state.student}`, "Your student page"),
        ": progress bars, quiz results, report",
      ),
      h(
        "li",
        {},
        open(`${BASE}/quizzes/${state.quiz}`, "The quiz's page"),
        ": the leaderboard (after your first attempt)",
      ),
      teacherLinks,
    ),
    h(
      "p",
      {},
      h("button", {
        type: "button",
        class: "secondary",
        text: "Start over as someone new",
        onclick: startOver,
      }),
    ),
  );

  function startOver() {
    localStorage.removeItem(STORE);
    location.reload();
  }

  // The teacher's content exists before the student opens it: sent as the page opens.
  function ensureContent() {
    const mark = `${state.teacher}|${state.lesson}`;
    if (!state.teacher || state.created.includes(mark)) return;
    for (const [id, type, title] of [
      [state.lesson, "lesson", LESSON_TITLE],
      [state.quiz, "quiz", QUIZ_TITLE],
    ]) {
      tracker.contentActivity({
        teacher_id: state.teacher,
        content_id: id,
        content_type: type,
        action: "created",
        timestamp: now(),
        title,
      });
    }
    state.created.push(mark);
    save();
    tracker.flush();
  }
  ensureContent();
  if (canSeeTeacherPages && anyone) showTeacherLinks();
  else if (canSeeTeacherPages) waitForLesson(30);

  async function waitForLesson(tries) {
    const answer = await request(`${API}/users/${state.teacher}/overview`);
    if (answer.kind === "ok" && answer.data.content.some((c) => c.content_id === state.lesson))
      showTeacherLinks();
    else if (tries > 1) setTimeout(() => waitForLesson(tries - 1), 1000);
  }

  // --- the lesson -------------------------------------------------------------------------
  const bar = h("progress", { max: "100", value: 0, "aria-labelledby": "demo-progress-label" });
  const barText = h("span", { class: "pct" });
  const sectionCards = SECTIONS.map(([name, title, text]) => {
    const button = h("button", {
      type: "button",
      class: "secondary",
      text: "Mark as read",
      onclick: () => read(name),
    });
    const card = h(
      "section",
      { class: "section-card", "aria-labelledby": `sec-${name}` },
      h("h3", { id: `sec-${name}`, text: title }),
      h("p", { text }),
      button,
    );
    card.button = button;
    card.name = name;
    return card;
  });
  const videoButton = h("button", {
    type: "button",
    class: "secondary",
    text: "Watch 30 s of the video",
    onclick: () => progress(30),
  });
  lessonPanel.show(
    h(
      "div",
      { class: "item-head" },
      h("span", { id: "demo-progress-label", class: "item-name", text: "Your progress" }),
      barText,
    ),
    bar,
    h("p", { class: "meta", id: "demo-video" }),
    h("p", {}, videoButton),
    sectionCards,
  );

  function drawLesson() {
    const percent = Math.round((state.read.length / SECTIONS.length) * 10000) / 100;
    bar.value = percent;
    bar.classList.toggle("done", percent >= 100);
    barText.textContent = pct(percent);
    document.getElementById("demo-video").textContent = `Video watched: ${state.video} s`;
    for (const card of sectionCards) {
      const done = state.read.includes(card.name);
      card.classList.toggle("read", done);
      card.button.disabled = done;
      card.button.textContent = done ? "Read" : "Mark as read";
    }
    return percent;
  }

  function read(name) {
    if (!state.read.includes(name)) state.read.push(name);
    progress(0);
  }

  function progress(seconds) {
    ensureContent();
    state.startedAt ??= now();
    state.video += seconds;
    const percent = drawLesson();
    const at = now();
    tracker.lessonProgress({
      student_id: state.student,
      lesson_id: state.lesson,
      started_at: state.startedAt,
      completed_at: percent >= 100 ? at : null,
      progress_percent: percent,
      video_watch_time: state.video,
      sections_read: [...state.read],
      last_accessed_at: at,
    });
    save();
    tracker.flush();
  }
  drawLesson();

  // --- the quiz ---------------------------------------------------------------------------
  let openedAt = Date.now();
  const result = h("p", { class: "result", role: "status" });
  const quizForm = h(
    "form",
    {},
    QUESTIONS.map(([id, text, options]) =>
      h(
        "fieldset",
        { class: "question" },
        h("legend", { text }),
        h(
          "div",
          { class: "choices" },
          options.map((option, i) =>
            h(
              "div",
              { class: "choice" },
              h("input", { type: "radio", name: id, id: `${id}-${i}`, value: option, required: true }),
              h("label", { for: `${id}-${i}`, text: option }),
            ),
          ),
        ),
      ),
    ),
    h("button", { type: "submit", text: "Submit answers" }),
    result,
  );
  quizForm.addEventListener("submit", (event) => {
    event.preventDefault();
    ensureContent();
    const data = new FormData(quizForm);
    const answers = Object.fromEntries(QUESTIONS.map(([id]) => [id, String(data.get(id))]));
    const score = QUESTIONS.filter(([id, , , correct]) => answers[id] === correct).length;
    state.attempts += 1;
    tracker.quizAttempt({
      student_id: state.student,
      quiz_id: state.quiz,
      attempt_id: newId(),
      attempt_number: state.attempts,
      answers,
      score,
      submitted_at: now(),
      duration_seconds: Math.max(1, Math.round((Date.now() - openedAt) / 1000)),
      is_passed: score >= PASS,
    });
    save();
    tracker.flush();
    result.textContent = `Attempt ${state.attempts}: ${score} of ${QUESTIONS.length} right, ${score >= PASS ? "passed" : "not passed yet"}.`;
    openedAt = Date.now();
  });
  quizPanel.show(quizForm);

  // --- the forum --------------------------------------------------------------------------
  const question = h("textarea", {
    id: "forum-text",
    name: "content",
    rows: "3",
    required: true,
    maxlength: "2000",
  });
  const posted = h("p", { class: "result", role: "status" });
  const forumForm = h(
    "form",
    {},
    h("div", { class: "field" }, h("label", { for: "forum-text", text: "Your question" }), question),
    h("button", { type: "submit", text: "Post" }),
    posted,
  );
  forumForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = question.value.trim();
    if (!content) return;
    const post = newId();
    tracker.forumActivity({
      user_id: state.student,
      post_id: post,
      thread_id: newId(),
      action_type: "post",
      content,
      created_at: now(),
    });
    tracker.flush();
    question.value = "";
    posted.replaceChildren("Posted ", idRef(post), ".");
  });
  forumPanel.show(forumForm);

  // --- what was sent ----------------------------------------------------------------------
  const pending = h("p", { class: "meta", role: "status" });
  const log = h("ol", { class: "log", reversed: true });
  sentPanel.show(pending, log);
  const showPending = () => {
    const n = tracker.pending();
    pending.textContent = n
      ? `${n} event${n === 1 ? "" : "s"} waiting to be sent`
      : "Everything sent has been answered.";
  };
  showPending();
  tracker.onResult((answer) => {
    const at = new Date().toLocaleTimeString("en-GB");
    let text;
    if (answer.error && answer.retry_in !== undefined)
      text = `${at}: not accepted yet (${answer.error}); the tracker retries with the same ids`;
    else if (answer.error)
      text = `${at}: dropped, it can never be accepted (${answer.error})`;
    else {
      const rejected = (answer.rejected || [])
        .map((r) => r.errors?.map((e) => `${e.field}: ${e.message}`).join("; "))
        .join(" | ");
      text = `${at}: ${answer.accepted} event${answer.accepted === 1 ? "" : "s"} accepted${rejected ? `, rejected: ${rejected}` : ""}`;
    }
    log.prepend(h("li", { text }));
    while (log.children.length > 30) log.lastElementChild.remove();
    showPending();
  });
}
