// The review app's few behaviours: open a queue row, seek the audio from the chart, flags and transcript, follow
// playback, and send a reviewer's decision on a flag.
"use strict";

document.querySelectorAll("tr.call[data-href]").forEach((row) => {
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) window.location = row.dataset.href;
  });
});

const player = document.getElementById("player");
if (player) {
  const seek = (seconds) => {
    player.currentTime = seconds;
    player.play().catch(() => {});  // a browser may refuse to play without a gesture; the position is set anyway
  };
  document.querySelectorAll("[data-seek]").forEach((element) => {
    element.addEventListener("click", () => seek(parseFloat(element.dataset.seek)));
  });

  const playhead = document.getElementById("playhead");
  const turns = [...document.querySelectorAll("tr.turn")];
  player.addEventListener("timeupdate", () => {
    const t = player.currentTime;
    const x = (t / parseFloat(playhead.dataset.duration)) * parseFloat(playhead.dataset.width);
    playhead.setAttribute("x1", x);
    playhead.setAttribute("x2", x);
    turns.forEach((row) => row.classList.toggle(
      "playing", parseFloat(row.dataset.start) <= t && t < parseFloat(row.dataset.end)));
  });
}

const reviewer = document.getElementById("reviewer");
if (reviewer) reviewer.value = localStorage.getItem("analyzer-reviewer") || "";

document.querySelectorAll("form.review").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const shown = form.parentElement.querySelector(".decision");
    if (!reviewer.value.trim()) {
      shown.textContent = "give your name as reviewer first";
      reviewer.focus();
      return;
    }
    localStorage.setItem("analyzer-reviewer", reviewer.value.trim());
    const response = await fetch(form.action, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({decision: event.submitter.value, note: form.elements.note.value,
                            reviewer: reviewer.value.trim()}),
    });
    const answer = await response.json();
    if (!response.ok) {
      shown.textContent = typeof answer.detail === "string" ? answer.detail : "not saved: " + response.status;
      return;
    }
    shown.className = "decision " + answer.decision;
    shown.textContent = `${answer.decision} by ${answer.reviewer}, ${answer.at.slice(0, 16).replace("T", " ")}` +
      (answer.note ? `: ${answer.note}` : "");
    form.elements.note.value = "";
  });
});
