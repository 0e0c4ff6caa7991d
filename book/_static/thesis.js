// The bokeh/panel outputs load es-module-shims, which dispatches DOMContentLoaded a second time.
// Listeners that already ran would run again: sphinx-togglebutton would then add a second button
// to every exercise solution and show it expanded. Run each DOMContentLoaded listener once.
(function () {
  var add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, listener, options) {
    if (type === "DOMContentLoaded" && typeof listener === "function") {
      var original = listener;
      var done = false;
      listener = function (event) {
        if (done) return undefined;
        done = true;
        return original.call(this, event);
      };
    }
    return add.call(this, type, listener, options);
  };
})();
