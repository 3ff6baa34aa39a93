// The page at /: POST /predict with the textarea's text, entities highlighted inline (one colour per type, the
// score on hover), and the model's description from GET /health. No libraries, no CDN.
"use strict";

// Light fills for dark text; CoNLL's four types first, then a cycle for other label sets.
const KNOWN_COLOURS = { PER: "#ffd8a8", ORG: "#b2f2bb", LOC: "#a5d8ff", MISC: "#e5dbff" };
const MORE_COLOURS = ["#ffec99", "#fcc2d7", "#c3fae8", "#d0ebff", "#eebefa", "#d8f5a2", "#ffe3e3", "#e9ecef"];
const colours = {};

function colourOf(type) {
  if (!(type in colours)) {
    const used = Object.keys(colours).filter((t) => !(t in KNOWN_COLOURS)).length;
    colours[type] = KNOWN_COLOURS[type] || MORE_COLOURS[used % MORE_COLOURS.length];
  }
  return colours[type];
}

function showLegend(types) {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...types.map((type) => {
    const item = document.createElement("li");
    item.textContent = type;
    item.style.background = colourOf(type);
    return item;
  }));
}

function describe(health) {
  const parts = [`Model ${health.model} (${health.kind})`];
  if (health.size_bytes != null) parts.push(`${(health.size_bytes / 1e6).toFixed(1)} MB on disk`);
  if (health.test_f1 != null) parts.push(`test F1 ${health.test_f1.toFixed(4)}`);
  if (health.num_parameters != null) parts.push(`${health.num_parameters.toLocaleString("en")} parameters`);
  return parts.join(" · ");
}

// Offsets are code points (Python's), so the text is sliced as code points, not UTF-16 units.
function render(record) {
  const chars = Array.from(record.text);
  const result = document.getElementById("result");
  const nodes = [];
  let at = 0;
  for (const entity of record.entities) {
    if (entity.start > at) nodes.push(document.createTextNode(chars.slice(at, entity.start).join("")));
    const mark = document.createElement("mark");
    mark.className = "entity";
    mark.dataset.label = entity.label;
    mark.dataset.start = entity.start;
    mark.dataset.end = entity.end;
    mark.style.background = colourOf(entity.label);
    mark.title = `${entity.label}, score ${entity.score.toFixed(4)}`;
    const words = document.createElement("span");
    words.className = "words";
    words.textContent = chars.slice(entity.start, entity.end).join("");
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = entity.label;
    mark.append(words, tag);
    nodes.push(mark);
    at = entity.end;
  }
  if (at < chars.length) nodes.push(document.createTextNode(chars.slice(at).join("")));
  if (!record.entities.length) nodes.push(document.createTextNode(" (no entities found)"));
  result.replaceChildren(...nodes);
  const seen = new Set(Object.keys(colours));
  record.entities.forEach((e) => seen.add(e.label));
  showLegend([...seen].sort());
}

function showError(message) {
  const error = document.getElementById("error");
  error.textContent = message;
  error.hidden = !message;
}

async function submit(event) {
  if (event) event.preventDefault();
  const button = document.getElementById("submit");
  button.disabled = true;
  showError("");
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: document.getElementById("text").value }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    render(body);
    document.body.dataset.state = "done";
  } catch (err) {
    showError(`Could not tag the text: ${err.message}`);
    document.body.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}

async function loadHealth() {
  try {
    const health = await (await fetch("/health")).json();
    document.getElementById("model").textContent = describe(health);
    showLegend(health.entity_types || []);
  } catch (err) {
    document.getElementById("model").textContent = `The model's description is unavailable (${err.message}).`;
  }
}

document.getElementById("form").addEventListener("submit", submit);
document.getElementById("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
});
loadHealth();
