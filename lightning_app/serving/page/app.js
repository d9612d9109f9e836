// The drawing page: strokes on a canvas become a PNG posted to /predict when each stroke ends; a photo is posted
// as it is. Everything runs from this server; nothing is fetched from elsewhere.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const prediction = document.getElementById("prediction");
const bars = document.getElementById("bars");
// MNIST's strokes are about a tenth of the digit's 20-pixel box wide, once scaled into the 28-pixel field.
const BRUSH = pad.width / 12;
let drawing = null;
let asked = 0; // the newest request: an older answer arriving late is not shown over it
window.strokeTimes = []; // milliseconds from the end of each stroke to its answer on the page

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  asked += 1;
  prediction.textContent = "Draw a digit (or a number) in the square.";
  bars.replaceChildren();
}

function point(event) {
  const rect = pad.getBoundingClientRect();
  return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  drawing = point(event);
  ink.lineWidth = BRUSH;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.strokeStyle = "#000";
  ink.beginPath();
  ink.arc(drawing[0], drawing[1], BRUSH / 2, 0, 2 * Math.PI);
  ink.fillStyle = "#000";
  ink.fill();
  event.preventDefault();
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  // Fast pens and fingers deliver several positions per event.
  for (const each of event.getCoalescedEvents ? event.getCoalescedEvents() : [event]) {
    const next = point(each);
    ink.beginPath();
    ink.moveTo(drawing[0], drawing[1]);
    ink.lineTo(next[0], next[1]);
    ink.stroke();
    drawing = next;
  }
  event.preventDefault();
});

function endStroke() {
  if (!drawing) return;
  drawing = null;
  readDrawing(performance.now());
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

async function ask(blob, name, details) {
  const form = new FormData();
  form.append("image", blob, name);
  if (details) form.append("details", "1");
  const response = await fetch("predict", { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function readDrawing(strokeEnd) {
  const mine = ++asked;
  pad.toBlob(async (blob) => {
    try {
      const result = await ask(blob, "drawing.png", true);
      if (mine !== asked) return;
      showAnswer(result);
      window.strokeTimes.push(performance.now() - strokeEnd);
      prediction.dataset.answered = String(mine); // which stroke the answer shown is for (the tests wait on it)
    } catch (error) {
      if (mine !== asked) return;
      prediction.innerHTML = "";
      const message = document.createElement("span");
      message.className = "error";
      message.textContent = error.message;
      prediction.append(message);
      bars.replaceChildren();
    }
  }, "image/png");
}

function percent(p) {
  return (100 * p).toFixed(p < 0.995 ? 1 : 0) + "%";
}

function showAnswer(result) {
  const number = document.createElement("span");
  number.className = "number";
  number.textContent = result.number;
  const detail =
    result.digits.length === 1
      ? percent(result.probability)
      : result.digits.map((d) => `${d.digit} ${percent(d.probability)}`).join(", ");
  prediction.replaceChildren(number, document.createTextNode(detail));
  bars.replaceChildren();
  result.probabilities.forEach((row, index) => {
    if (result.probabilities.length > 1) {
      const label = document.createElement("div");
      label.className = "digit-label";
      label.textContent = `digit ${index + 1}`;
      bars.append(label);
    }
    const top = row.indexOf(Math.max(...row));
    row.forEach((p, digit) => {
      const bar = document.createElement("div");
      bar.className = "bar" + (digit === top ? " top" : "");
      bar.innerHTML = `<span>${digit}</span><div class="track"><div class="fill"></div></div><span>${percent(p)}</span>`;
      bar.querySelector(".fill").style.width = `${100 * p}%`;
      bars.append(bar);
    });
  });
}

document.getElementById("clear").addEventListener("click", clearPad);

document.getElementById("photo").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const answer = document.getElementById("photo-answer");
  const view = document.getElementById("photo-view");
  const seen = document.getElementById("seen");
  answer.textContent = "Reading...";
  view.replaceChildren();
  seen.replaceChildren();
  const picture = new Image();
  picture.src = URL.createObjectURL(file);
  view.append(picture);
  try {
    const result = await ask(file, file.name, true);
    answer.textContent = `${result.number}  (` + result.digits.map((d) => percent(d.probability)).join(", ") + ")";
    await picture.decode().catch(() => {});
    // The boxes are in the photo's own pixels; the photo is shown scaled to the page.
    result.digits.forEach((d, index) => {
      const [left, top, right, bottom] = d.box;
      const box = document.createElement("div");
      box.className = "box";
      Object.assign(box.style, {
        left: `${100 * left / picture.naturalWidth}%`,
        top: `${100 * top / picture.naturalHeight}%`,
        width: `${100 * (right - left) / picture.naturalWidth}%`,
        height: `${100 * (bottom - top) / picture.naturalHeight}%`,
      });
      box.innerHTML = `<span>${index + 1}: ${d.digit}</span>`;
      view.append(box);
      const figure = document.createElement("figure");
      figure.innerHTML = `<img alt="what the model saw"><figcaption>${index + 1}: ${d.digit} (${percent(d.probability)})</figcaption>`;
      figure.querySelector("img").src = result.inputs[index];
      seen.append(figure);
    });
  } catch (error) {
    answer.innerHTML = "";
    const message = document.createElement("span");
    message.className = "error";
    message.textContent = error.message;
    answer.append(message);
  }
});

fetch("info")
  .then((response) => response.json())
  .then((info) => {
    const checkpoints = info.model.checkpoints;
    const accuracy = checkpoints.map((c) => (c.test_accuracy == null ? "?" : percent(c.test_accuracy))).join(", ");
    document.getElementById("model").textContent =
      `${checkpoints.length > 1 ? "Ensemble of " + checkpoints.length + " checkpoints" : "Checkpoint"}: ` +
      `test accuracy ${accuracy} | ${info.server.devices.join(", ")}`;
  })
  .catch(() => {});

clearPad();
