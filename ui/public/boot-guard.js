// A classic script that runs before the app's modules: if they fail to load or throw while
// starting, the window says so instead of staying blank (a blank privileged-access tool is the
// worst state to leave an administrator in). It shows only the error's own text, as text.
(function () {
  function show(text) {
    // Once the app has rendered, its own error states take over.
    var app = document.getElementById('app');
    if (app && app.childElementCount > 0) return;
    var box = document.getElementById('boot-error');
    if (!box) {
      box = document.createElement('pre');
      box.id = 'boot-error';
      box.setAttribute('data-testid', 'boot-error');
      box.setAttribute('role', 'alert');
      document.body.appendChild(box);
    }
    box.textContent += 'paw could not start its interface: ' + text + '\n';
  }
  window.addEventListener('error', function (e) {
    show((e.message || 'error') + (e.filename ? ' (' + e.filename + ':' + e.lineno + ')' : ''));
  });
  window.addEventListener('unhandledrejection', function (e) {
    show(String(e.reason && e.reason.stack ? e.reason.stack : e.reason));
  });
})();
