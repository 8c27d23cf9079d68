// The launch editor (dashboards/templates/editor.html): builds the rows of its lists (trait
// filters, matchers, KPIs) from the form's data, suggests what Landed has seen, shows each
// matcher's recent matches and each KPI's readiness, and posts the form as JSON with its CSRF
// token. Every value reaches the page as text (textContent, value), never as HTML.
(function () {
  "use strict";
  var form = document.getElementById("launch-editor");
  if (!form) return;
  var initial = JSON.parse(form.dataset.initial);
  var csrf = form.dataset.csrf;
  var live = initial.live;
  var lockedKpis = live ? initial.kpi_ids : [];
  var metrics = initial.metrics;
  var SIGNALS = ["exposed", "used", "converted"];
  var TYPES = ["track", "page", "screen", "identify"];
  var keyEdited = initial.mode !== "new" || initial.form.key !== "";
  var showErrors = false;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === false || value === null || value === undefined) return;
      if (name === "text") node.textContent = value;
      else if (name === "value") node.value = value;
      else if (name === "checked") node.checked = value;
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  // Hidden until it has a message; the flag style (which would show it) comes with the message.
  function errorSlot() { return el("p", { "class": "field-error", role: "alert", hidden: true }); }

  function wrapped(path, input) {
    return el("span", { "class": "field", "data-field": path }, [input, errorSlot()]);
  }

  function option(value, label, selected) {
    var node = el("option", { value: value, text: label });
    node.selected = selected;
    return node;
  }

  function field(id) { return document.getElementById(id); }

  // ------------------------------------------------------------------ suggestions

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { values: [] }; })
      .catch(function () { return { values: [] }; });
  }

  function fill(list, values) {
    list.replaceChildren.apply(list, values.map(function (v) {
      return el("option", { value: v.value, text: v.count ? v.value + " (" + v.count + ")" : v.value });
    }));
  }

  function suggest(query, list) {
    getJSON("/api/editor/suggestions?" + new URLSearchParams(query)).then(function (data) {
      fill(list, data.values || []);
    });
  }

  var listCount = 0;
  function ownList() {
    listCount += 1;
    var list = el("datalist", { id: "suggest-" + listCount });
    document.body.appendChild(list);
    return list;
  }

  // ------------------------------------------------------------------ rows

  function whereRow(row, path, disabled, suggestFor) {
    var nameList = ownList(), valueList = ownList();
    var name = el("input", { "class": "w-name", value: row.name, placeholder: suggestFor.namePlaceholder,
      list: suggestFor.names || nameList.id, disabled: disabled, "aria-label": suggestFor.namePlaceholder });
    var values = el("input", { "class": "w-values", value: row.values, placeholder: "values, separated by commas",
      list: valueList.id, disabled: disabled, "aria-label": "accepted values" });
    if (!suggestFor.names) {
      name.addEventListener("focus", function () { suggestFor.nameQuery() && suggest(suggestFor.nameQuery(), nameList); });
    }
    values.addEventListener("focus", function () {
      var query = suggestFor.valueQuery(name.value.trim());
      if (query) suggest(query, valueList);
    });
    var remove = disabled ? null : el("button", { type: "button", "class": "remove", text: "Remove" });
    var node = el("div", { "class": "where-row" }, [name, document.createTextNode(" = "), values, remove]);
    if (remove) remove.addEventListener("click", function () { node.remove(); changed(); });
    return node;
  }

  function whereList(rows, path, disabled, suggestFor) {
    var box = el("div", { "class": "where rows", "data-field": path });
    var holder = el("div", { "class": "where-rows" });
    rows.forEach(function (row) { holder.appendChild(whereRow(row, path, disabled, suggestFor)); });
    box.appendChild(holder);
    if (!disabled) {
      var add = el("button", { type: "button", text: suggestFor.addLabel });
      add.addEventListener("click", function () {
        holder.appendChild(whereRow({ name: "", values: "" }, path, false, suggestFor));
      });
      box.appendChild(add);
    }
    box.appendChild(errorSlot());
    return box;
  }

  function collectWhere(box) {
    return Array.prototype.map.call(box.querySelectorAll(".where-row"), function (row) {
      return { name: row.querySelector(".w-name").value, values: row.querySelector(".w-values").value };
    });
  }

  function matcherRow(signal, index, m) {
    var path = "signals." + signal + "." + index;
    var type = el("select", { "class": "m-type", disabled: live, "aria-label": "event type" },
      TYPES.map(function (t) { return option(t, t, t === m.type); }));
    var event = el("input", { "class": "m-event", value: m.event, list: "event-names", disabled: live,
      placeholder: "event name, e.g. Feature Used", "aria-label": "event name" });
    var where = whereList(m.where, path + ".where", live, {
      namePlaceholder: "property", addLabel: "Add a property filter",
      nameQuery: function () { return event.value.trim() ? { kind: "properties", event: event.value.trim() } : null; },
      valueQuery: function (name) {
        return name && event.value.trim() ? { kind: "property_values", event: event.value.trim(), property: name } : null;
      }
    });
    var readiness = el("p", { "class": "muted readiness", "data-readiness": signal + "." + index });
    var remove = live ? null : el("button", { type: "button", "class": "remove", text: "Remove matcher" });
    var node = el("div", { "class": "matcher", "data-field": path }, [
      type, document.createTextNode(" "), wrapped(path + ".event", event), where, readiness, remove, errorSlot()
    ]);
    if (remove) remove.addEventListener("click", function () { node.remove(); renumber(); changed(); });
    return node;
  }

  function metricInfo(name) {
    return metrics.filter(function (m) { return m.value === name; })[0] || { unit: "", sentence: "" };
  }

  function kpiRow(index, k) {
    var path = "kpis." + index;
    var onRecord = lockedKpis.indexOf(k.id) >= 0;
    var id = el("input", { "class": "k-id", value: k.id, placeholder: "e.g. adoption", readonly: onRecord,
      "aria-label": "KPI id" });
    var metric = el("select", { "class": "k-metric", disabled: onRecord, "aria-label": "metric" },
      [option("", "Pick a metric", !k.metric)].concat(metrics.map(function (m) {
        return option(m.value, m.label, m.value === k.metric);
      })));
    var sentence = el("p", { "class": "muted k-sentence" });
    var comparator = el("select", { "class": "k-comparator", disabled: onRecord, "aria-label": "comparator" }, [
      option(">=", "at least", k.comparator !== "<="), option("<=", "at most", k.comparator === "<=")
    ]);
    var target = el("input", { "class": "k-target", value: k.target, inputmode: "decimal", "aria-label": "target" });
    var unit = el("span", { "class": "k-unit" });
    var minSample = el("input", { "class": "k-min-sample", value: k.min_sample, type: "number", min: "1",
      placeholder: "30", "aria-label": "minimum sample" });
    var byDay = el("input", { "class": "k-by-day", value: k.by_day, type: "number", min: "1",
      placeholder: "end of window", "aria-label": "judge by day" });
    function describe() {
      var info = metricInfo(metric.value);
      sentence.textContent = info.sentence;
      unit.textContent = info.unit === "%" ? " %" : info.unit ? " " + info.unit : "";
    }
    metric.addEventListener("change", describe);
    describe();
    var remove = onRecord ? null : el("button", { type: "button", "class": "remove", text: "Remove KPI" });
    var node = el("div", { "class": "kpi", "data-field": path }, [
      el("p", {}, [wrapped(path + ".id", id), document.createTextNode(" "), wrapped(path + ".metric", metric)]),
      sentence,
      el("p", {}, [comparator, document.createTextNode(" "), wrapped(path + ".target", target), unit]),
      el("p", {}, [
        el("label", { text: "Minimum sample " }), wrapped(path + ".min_sample", minSample),
        el("label", { text: " Judge by day " }), wrapped(path + ".by_day", byDay)
      ]),
      el("p", { "class": "muted k-help", text: "Target in percent for rates (20 for 20%), in days for days to adopt. " +
        "Minimum sample: fewer users than this give insufficient data (30 if empty). Judge by day: the first N days only (optional)." }),
      el("p", { "class": "muted readiness", "data-kpi-readiness": String(index) }),
      el("p", { "class": "muted hint", "data-kpi-hint": String(index) }),
      remove, errorSlot()
    ]);
    if (remove) remove.addEventListener("click", function () { node.remove(); renumber(); changed(); });
    return node;
  }

  // Paths follow positions, so messages land on the right row after one is removed.
  function renumber() {
    var data = collect();
    SIGNALS.forEach(function (signal) { renderMatchers(signal, data[signal]); });
    renderKpis(data.kpis);
  }

  function renderMatchers(signal, matchers) {
    var box = field("signal-" + signal);
    box.replaceChildren.apply(box, matchers.map(function (m, i) { return matcherRow(signal, i, m); }));
  }

  function renderKpis(kpis) {
    var box = field("kpis");
    box.replaceChildren.apply(box, kpis.map(function (k, i) { return kpiRow(i, k); }));
  }

  function renderAudience(rows) {
    var box = field("audience-where");
    box.replaceChildren(whereList(rows, "audience.where", live, {
      names: "trait-names", namePlaceholder: "trait", addLabel: "Add a trait filter",
      valueQuery: function (name) { return name ? { kind: "trait_values", trait: name } : null; }
    }));
  }

  // ------------------------------------------------------------------ the form as JSON

  function collect() {
    var data = {
      version: initial.form.version,
      key: field("f-key").value,
      name: field("f-name").value,
      owner: field("f-owner").value,
      description: field("f-description").value,
      launched_local: field("f-launched").value,
      time_zone: field("f-zone").value,
      window_days: field("f-window").value,
      identified_only: field("f-identified").checked,
      audience_where: collectWhere(field("audience-where")),
      channel_property: field("f-channel").value,
      kpis: Array.prototype.map.call(field("kpis").querySelectorAll(".kpi"), function (row) {
        return {
          id: row.querySelector(".k-id").value,
          metric: row.querySelector(".k-metric").value,
          comparator: row.querySelector(".k-comparator").value,
          target: row.querySelector(".k-target").value,
          min_sample: row.querySelector(".k-min-sample").value,
          by_day: row.querySelector(".k-by-day").value
        };
      }),
      reason: field("f-reason") ? field("f-reason").value : ""
    };
    SIGNALS.forEach(function (signal) {
      data[signal] = Array.prototype.map.call(field("signal-" + signal).querySelectorAll(".matcher"), function (row) {
        return {
          type: row.querySelector(".m-type").value,
          event: row.querySelector(".m-event").value,
          where: collectWhere(row.querySelector(".where"))
        };
      });
    });
    return data;
  }

  // ------------------------------------------------------------------ messages

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(function (p) {
      p.hidden = true; p.textContent = ""; p.classList.remove("flag");
    });
    field("form-error").hidden = true;
    field("form-error").classList.remove("flag");
  }

  // A message goes to the field its path names, or the nearest enclosing one.
  function showError(path, message) {
    var parts = path.split(".");
    while (parts.length) {
      var box = form.querySelector('[data-field="' + parts.join(".") + '"]');
      if (box) {
        var slot = box.querySelector(":scope > .field-error");
        if (slot) {
          slot.textContent = slot.textContent ? slot.textContent + "; " + message : message;
          slot.hidden = false;
          slot.classList.add("flag");
          return;
        }
      }
      parts.pop();
    }
    var top = field("form-error");
    top.textContent = top.textContent ? top.textContent + "; " + message : message;
    top.hidden = false;
    top.classList.add("flag");
  }

  function showErrors_(errors) {
    clearErrors();
    errors.forEach(function (e) { showError(e.field, e.message); });
  }

  function when(text) { return text ? text.replace("T", " ").slice(0, 16) + " UTC" : ""; }

  function showCheck(data) {
    if (showErrors) showErrors_(data.fields || []);
    form.querySelectorAll("[data-readiness], [data-kpi-readiness], [data-kpi-hint]").forEach(function (p) {
      p.textContent = "";
    });
    (data.matchers || []).forEach(function (m) {
      var p = form.querySelector('[data-readiness="' + m.signal + "." + m.index + '"]');
      if (!p) return;
      var text = "Matched " + m.events_7d + " events (" + m.users_7d + " users) in the last 7 days";
      text += m.last_seen_at ? "; last matched " + when(m.last_seen_at) : "; never matched yet";
      if (m.warning) text += ". " + m.warning;
      p.textContent = text;
      p.classList.toggle("flag", Boolean(m.warning));
    });
    (data.kpis || []).forEach(function (k) {
      var p = form.querySelector('[data-kpi-readiness="' + k.index + '"]');
      if (!p) return;
      p.textContent = (k.warning ? "May not be judged at current traffic: " : "Can be judged at current traffic: ") + k.message;
      p.classList.toggle("flag", k.warning);
    });
    (data.hints || []).forEach(function (h) {
      var p = form.querySelector('[data-kpi-hint="' + h.index + '"]');
      if (p) p.textContent = "Past launches: " + h.sentence;
    });
  }

  var timer = null, sequence = 0;
  function changed() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, 600);
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    });
  }

  function check() {
    var mine = ++sequence;
    var body = collect();
    body.mode = initial.mode;
    post("/api/editor/check", body).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
      if (data && mine === sequence) showCheck(data);
    }).catch(function () {});
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    showErrors = true;
    var button = field("save");
    button.disabled = true;
    post(form.getAttribute("action"), collect()).then(function (r) {
      return r.json().then(function (data) { return { status: r.status, data: data }; });
    }).then(function (answer) {
      button.disabled = false;
      if (answer.status < 300) {
        window.location.assign(answer.data.url);
        return;
      }
      var fields = answer.data.fields || [];
      if (fields.length) showErrors_(fields);
      else showErrors_([{ field: "form", message: answer.data.message + (answer.data.detail ? " (" + answer.data.detail + ")" : "") }]);
      var first = form.querySelector(".field-error:not([hidden]), #form-error:not([hidden])");
      if (first) first.scrollIntoView({ block: "center" });
    }).catch(function () {
      button.disabled = false;
      showErrors_([{ field: "form", message: "the service did not answer; try again" }]);
    });
  });

  // ------------------------------------------------------------------ start

  field("f-key").addEventListener("input", function () { keyEdited = true; });
  field("f-name").addEventListener("input", function () {
    if (keyEdited || initial.mode !== "new") return;
    field("f-key").value = field("f-name").value.toLowerCase().normalize("NFKD")
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
  });
  if (live) {
    ["f-launched", "f-zone", "f-window", "f-identified"].forEach(function (id) { field(id).disabled = true; });
    form.querySelectorAll(".add-matcher, .add-where").forEach(function (b) { b.hidden = true; });
  }
  form.querySelectorAll(".add-matcher").forEach(function (button) {
    button.addEventListener("click", function () {
      var signal = button.dataset.signal, box = field("signal-" + signal);
      box.appendChild(matcherRow(signal, box.querySelectorAll(".matcher").length, { type: "track", event: "", where: [] }));
    });
  });
  field("add-kpi").addEventListener("click", function () {
    var box = field("kpis");
    box.appendChild(kpiRow(box.querySelectorAll(".kpi").length,
      { id: "", metric: "", comparator: ">=", target: "", min_sample: "", by_day: "" }));
  });

  renderAudience(initial.form.audience_where);
  SIGNALS.forEach(function (signal) { renderMatchers(signal, initial.form[signal]); });
  renderKpis(initial.form.kpis);
  suggest({ kind: "events" }, field("event-names"));
  suggest({ kind: "traits" }, field("trait-names"));
  if (initial.mode !== "new") check();
})();
