// Progressive: click a heading of a .sortable table to sort its rows (the page reads fine without).
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, column) {
    th.setAttribute("data-dir", "none");
    th.tabIndex = 0;
    function sort() {
      var dir = th.getAttribute("data-dir") === "asc" ? "desc" : "asc";
      Array.prototype.forEach.call(heads, function (h) { h.setAttribute("data-dir", "none"); });
      th.setAttribute("data-dir", dir);
      var text = th.getAttribute("data-type") === "text";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort"), y = b.cells[column].getAttribute("data-sort");
        var order = text ? x.localeCompare(y) : (parseFloat(x) || 0) - (parseFloat(y) || 0);
        return dir === "asc" ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
});
// Progressive: buttons above a .plots group show one curve or all (without JavaScript all show).
document.querySelectorAll(".plots").forEach(function (group) {
  var figures = Array.prototype.slice.call(group.querySelectorAll("figure"));
  if (figures.length < 2) { return; }
  var bar = document.createElement("div");
  bar.className = "switch";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "curves to show");
  function add(label, chosen) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.setAttribute("aria-pressed", chosen === null ? "true" : "false");
    button.addEventListener("click", function () {
      figures.forEach(function (f) { f.hidden = chosen !== null && f !== chosen; });
      bar.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      button.setAttribute("aria-pressed", "true");
    });
    bar.appendChild(button);
  }
  add("all", null);
  figures.forEach(function (f) { add(f.querySelector("img").alt.replace(/( per epoch|, runs overlaid)$/, ""), f); });
  group.parentNode.insertBefore(bar, group);
});
