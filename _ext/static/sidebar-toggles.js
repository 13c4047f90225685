// sphinx-book-theme and pydata-sphinx-theme both bind their sidebar logic to the FIRST `.primary-toggle`
// (and `.secondary-toggle`) on the page, a navbar button that this layout never shows. The buttons a
// reader sees (in the article header) had no handler, so the chapter list could not be opened on a
// phone. Forward their clicks to the bound button: the themes then collapse the sidebar on wide screens
// and open it as a drawer on narrow ones, as they intend.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary", "secondary"]) {
    const toggles = Array.from(document.querySelectorAll(`.${kind}-toggle`));
    const bound = toggles[0];
    for (const toggle of toggles.slice(1)) {
      toggle.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    }
  }
});
