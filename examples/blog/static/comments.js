// Live comments on a post page: each comment posted (on this page, another tab, another
// browser, another server process) arrives as a server-sent event and is added to the list.
// An external script, not inline code: the blog's Content-Security-Policy runs only scripts
// from the site itself (or carrying the page's nonce). The comment is set as text, never as
// HTML: it is what a visitor typed.
(function () {
  "use strict";
  var section = document.getElementById("comments");
  if (!section || !section.dataset.events || !window.EventSource) {
    return;
  }
  var list = section.querySelector(".comment-list");
  var empty = section.querySelector(".no-comments");

  function show(comment) {
    var id = "comment-" + comment.id;
    if (document.getElementById(id)) {
      return; // already on the page: the writer's own, rendered after the form's redirect
    }
    var item = document.createElement("li");
    item.id = id;
    var meta = document.createElement("p");
    meta.className = "muted";
    var who = document.createElement("strong");
    who.textContent = comment.author;
    var when = document.createElement("time");
    when.dateTime = comment.created_at;
    when.textContent = String(comment.created_at).slice(0, 16).replace("T", " ");
    meta.append(who, " · ", when);
    var body = document.createElement("p");
    body.className = "comment-body";
    body.textContent = comment.body;
    item.append(meta, body);
    list.append(item);
    if (empty) {
      empty.hidden = true;
    }
  }

  // EventSource reconnects by itself after a network error or a server restart, sending the
  // last id it saw (Last-Event-ID): the server replays what was published meanwhile.
  var source = new EventSource(section.dataset.events);
  source.addEventListener("comment", function (event) {
    try {
      show(JSON.parse(event.data));
    } catch (error) {
      // A malformed event is skipped; the next one is shown.
    }
  });
})();
