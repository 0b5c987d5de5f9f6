// Transom admin: progressive enhancements only. Every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // After a failed save, put the keyboard on the first field that needs attention.
  var invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid && !document.querySelector("[autofocus]")) { invalid.focus(); }

  // The list's filters: folded on a narrow screen (they come after the results there);
  // the "Filter" button opens them.
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia("(max-width: 800px)").matches) {
    filters.open = false;
  }
  var toggle = document.querySelector(".filters-toggle");
  if (filters && toggle) {
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      filters.open = true;
      filters.scrollIntoView();
      var first = filters.querySelector("summary");
      if (first) { first.focus(); }
    });
  }

  // Many-to-many pickers: the filter box hides what doesn't match; the count follows the boxes.
  document.querySelectorAll(".picker").forEach(function (picker) {
    var filter = picker.querySelector(".picker-filter");
    var count = picker.querySelector(".picker-count");
    var items = picker.querySelectorAll(".picker-item");
    var total = picker.getAttribute("data-total");
    function recount() {
      var n = picker.querySelectorAll(".picker-item input:checked").length;
      count.textContent = n + " of " + total + " selected";
    }
    picker.addEventListener("change", recount);
    filter.addEventListener("input", function () {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      items.forEach(function (item) {
        var group = item.parentNode.querySelector("legend");
        var text = (item.textContent + " " + (group ? group.textContent : "")).toLowerCase();
        item.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
      });
      picker.querySelectorAll(".picker-group").forEach(function (group) {
        group.hidden = !group.querySelector(".picker-item:not([hidden])");
      });
    });
    // Enter in the filter box must not submit the form.
    filter.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); }
    });
  });

  // "Select all" checkbox of the list page (hidden until this script reveals it).
  var all = document.getElementById("select-all");
  if (all) {
    all.hidden = false;
    var boxes = document.querySelectorAll('input[name="_selected"]');
    var selection = document.querySelector(".selection");
    // Every row of the page ticked, on a list longer than the page: offer all of them.
    var across = document.querySelector(".select-across");
    var acrossInput = document.getElementById("id_select_across");
    function recount() {
      if (!selection) { return; }
      var n = 0;
      boxes.forEach(function (box) { if (box.checked) { n += 1; } });
      var everyRow = n === boxes.length && n > 0;
      if (acrossInput && acrossInput.value === "1" && everyRow) { return; }
      if (acrossInput) { acrossInput.value = "0"; }
      if (across) { across.hidden = !everyRow; }
      selection.textContent = n + " of " + boxes.length + " selected";
      all.checked = everyRow;
      all.indeterminate = n > 0 && n < boxes.length;
    }
    if (across && acrossInput) {
      across.addEventListener("click", function () {
        acrossInput.value = "1";
        across.hidden = true;
        selection.textContent = across.textContent.replace(/^Select all/, "All") + " selected";
      });
    }
    if (selection) { selection.hidden = false; }
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      recount();
    });
    boxes.forEach(function (box) { box.addEventListener("change", recount); });
    recount();
  }

  // Searchable boxes for large related tables: type a name, pick a row, its id is submitted.
  // A foreign key holds one id; a many-to-many box a comma-separated list, shown as chips.
  function combobox(input, multiple) {
    var url = input.getAttribute("data-autocomplete");
    var listId = input.id + "-choices";
    var list = document.createElement("ul");
    list.id = listId;
    list.className = "ac-list";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    var search = document.createElement("input");
    search.type = "search";
    search.id = input.id + "-search";
    search.placeholder = "Search…";
    search.setAttribute("role", "combobox");
    search.setAttribute("aria-autocomplete", "list");
    search.setAttribute("aria-expanded", "false");
    search.setAttribute("aria-controls", listId);
    var label = input.labels && input.labels[0] ? input.labels[0].textContent.trim() : "records";
    search.setAttribute("aria-label", "Search " + label);
    var chips = null;
    var labels = {};
    if (multiple) {
      try { labels = JSON.parse(input.getAttribute("data-labels") || "{}"); } catch (e) { labels = {}; }
      chips = document.createElement("ul");
      chips.className = "chips";
      chips.setAttribute("aria-label", label + ": chosen");
      input.insertAdjacentElement("afterend", chips);
    } else {
      search.value = input.getAttribute("data-label") || "";
    }
    (chips || input).insertAdjacentElement("afterend", search);
    search.insertAdjacentElement("afterend", list);
    input.type = "hidden";
    var timer = null;
    var active = -1;
    var asked = 0;  // the number of the latest request: an older, slower answer is dropped
    var chosenText = search.value;  // what the box says when its value was chosen
    var warning = document.createElement("span");
    warning.className = "ac-warning";
    warning.id = input.id + "-warning";
    warning.setAttribute("role", "alert");
    warning.hidden = true;
    list.insertAdjacentElement("afterend", warning);

    // Typed text that no row was chosen for would be lost (or, worse, the old value kept
    // silently): say so beside the box, and keep the form from being sent as if it were fine.
    function unchosen() {
      var text = search.value.trim();
      return multiple ? text !== "" : text !== "" && text !== chosenText.trim();
    }
    function flag(on) {
      warning.hidden = !on;
      warning.textContent = on ? "“" + search.value.trim() + "” is not chosen: pick it from the list." : "";
      if (on) {
        search.setAttribute("aria-invalid", "true");
        search.setAttribute("aria-describedby", warning.id);
      } else {
        search.removeAttribute("aria-invalid");
        search.removeAttribute("aria-describedby");
      }
    }
    if (input.form) {
      input.form.addEventListener("submit", function (event) {
        if (unchosen()) {
          event.preventDefault();
          flag(true);
          search.focus();
        }
      });
    }

    function ids() {
      return input.value.split(",").map(function (v) { return v.trim(); }).filter(Boolean);
    }
    function drawChips() {
      if (!chips) { return; }
      chips.textContent = "";
      ids().forEach(function (id) {
        var li = document.createElement("li");
        li.textContent = labels[id] || id;
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + (labels[id] || id));
        remove.addEventListener("click", function () {
          input.value = ids().filter(function (v) { return v !== id; }).join(",");
          drawChips();
          search.focus();
        });
        li.appendChild(remove);
        chips.appendChild(li);
      });
    }
    function close() {
      list.hidden = true;
      search.setAttribute("aria-expanded", "false");
      search.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function choose(item) {
      var id = item.getAttribute("data-id");
      if (multiple) {
        labels[id] = item.textContent;
        var current = ids();
        if (current.indexOf(id) < 0) { current.push(id); }
        input.value = current.join(",");
        search.value = "";
        drawChips();
      } else {
        input.value = id;
        search.value = item.textContent;
        chosenText = item.textContent;
      }
      flag(false);
      close();
    }
    function highlight(index) {
      var items = list.querySelectorAll("li[role=option]");
      items.forEach(function (li, i) { li.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (items[index]) { search.setAttribute("aria-activedescendant", items[index].id); }
    }
    function load() {
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      var mine = ++asked;
      fetch(url + sep + "q=" + encodeURIComponent(search.value), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== asked) { return; }  // a newer search was sent since
          list.textContent = "";
          if (data.results.length === 0) {
            var none = document.createElement("li");
            none.className = "ac-empty";
            none.setAttribute("aria-disabled", "true");
            none.textContent = "No results";
            list.appendChild(none);
            list.hidden = false;
            search.setAttribute("aria-expanded", "false");
            active = -1;
            return;
          }
          data.results.forEach(function (row, i) {
            var li = document.createElement("li");
            li.id = listId + "-" + i;
            li.setAttribute("role", "option");
            li.setAttribute("data-id", row.id);
            li.textContent = row.text;
            li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(li); });
            list.appendChild(li);
          });
          list.hidden = data.results.length === 0;
          search.setAttribute("aria-expanded", list.hidden ? "false" : "true");
          active = -1;
        });
    }
    search.addEventListener("input", function () {
      if (!multiple && search.value === "") { input.value = ""; chosenText = ""; }
      if (!warning.hidden && !unchosen()) { flag(false); }
      clearTimeout(timer);
      timer = setTimeout(load, 200);
    });
    search.addEventListener("keydown", function (e) {
      var items = list.querySelectorAll("li[role=option]");
      if (e.key === "ArrowDown") { e.preventDefault(); if (list.hidden) { load(); } else { highlight(Math.min(active + 1, items.length - 1)); } }
      else if (e.key === "ArrowUp") { e.preventDefault(); highlight(Math.max(active - 1, 0)); }
      else if (e.key === "Enter" && !list.hidden && items[active]) { e.preventDefault(); choose(items[active]); }
      else if (e.key === "Escape") { close(); }
    });
    search.addEventListener("blur", function () {
      setTimeout(function () { close(); if (unchosen()) { flag(true); } }, 150);
    });
    drawChips();
  }
  document.querySelectorAll("input.fk-id[data-autocomplete]").forEach(function (input) { combobox(input, false); });
  document.querySelectorAll("input.m2m-ids[data-autocomplete]").forEach(function (input) { combobox(input, true); });
})();
