// Monitoring: refresh each device's health and live values in place from /api/monitoring.
"use strict";

const REFRESH_MS = 3000;

function utcTime(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().slice(11, 19) : "";
}

function formatValue(value) {
  return value === null ? "\u2014" : Number(value.toPrecision(6)).toString();
}

function show(device) {
  const section = document.querySelector(`section[data-device="${CSS.escape(device.name)}"]`);
  if (!section) {
    return;
  }
  const state = section.querySelector('[data-field="state"]');
  state.textContent = device.state;
  state.className = `state state-${device.state.replace(/ /g, "-")}`;
  section.querySelector('[data-field="last_error"]').textContent = device.last_error;
  for (const reading of device.readings) {
    const row = section.querySelector(`tr[data-key="${CSS.escape(reading.key)}"]`);
    if (row) {
      row.querySelector('[data-field="value"]').textContent = formatValue(reading.value);
      const time = row.querySelector('[data-field="read_at"]');
      time.dataset.ts = reading.read_at;
      time.textContent = utcTime(reading.read_at);
    }
  }
}

async function refresh() {
  try {
    const response = await fetch("/api/monitoring", { credentials: "same-origin" });
    if (response.ok) {
      (await response.json()).devices.forEach(show);
    }
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

document.querySelectorAll('[data-field="read_at"]').forEach((cell) => {
  cell.textContent = utcTime(Number(cell.dataset.ts));
});
setTimeout(refresh, REFRESH_MS);
