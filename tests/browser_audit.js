// Evaluated in each page by tests/test_browser.py: returns a list of problems (strings).
(desktop) => {
  const problems = [];
  const article = document.querySelector("article.bd-article") || document.body;
  const short = (el) => (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 70);
  // Maths MathJax left alone, and TeX that was never recognised as maths.
  for (const el of article.querySelectorAll(".math")) {
    if (!el.querySelector("mjx-container")) problems.push(`untypeset maths: ${short(el)}`);
  }
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, mjx-container, script, style, .math")) continue;
    const text = node.textContent;
    if (/\\\(|\\\)|\\\[|\$[^$\s][^$]*[\\^_][^$]*\$/.test(text)) problems.push(`raw TeX in the text: ${text.trim().slice(0, 70)}`);
    if (/\{(glue|cite|numref|ref|doc|eq)[:a-z]*\}`/.test(text)) problems.push(`raw MyST role: ${text.trim().slice(0, 70)}`);
  }
  // Display equations wider than their box must scroll inside it, never be clipped.
  for (const eq of article.querySelectorAll('mjx-container[display="true"]')) {
    const box = eq.parentElement;
    const overflowing = eq.scrollWidth > box.clientWidth + 1 || box.scrollWidth > box.clientWidth + 1;
    const style = getComputedStyle(box), own = getComputedStyle(eq);
    const scrolls = ["auto", "scroll"].includes(style.overflowX) || ["auto", "scroll"].includes(own.overflowX);
    if (overflowing && !scrolls) problems.push(`equation clipped (${eq.scrollWidth}px in ${box.clientWidth}px): ${short(box)}`);
  }
  // Code: on a desktop a cell's code fits its column; on a phone it may scroll inside itself. (Printed
  // output may scroll at any width.)
  if (desktop) {
    for (const pre of article.querySelectorAll("div.highlight pre")) {
      if (pre.closest(".cell_output, .output")) continue;
      if (pre.scrollWidth > pre.clientWidth + 1) problems.push(`code wider than the column (${pre.scrollWidth}px > ${pre.clientWidth}px): ${short(pre)}`);
    }
  }
  // Images: loaded, with alt text that describes them (not a file name).
  for (const img of article.querySelectorAll("img")) {
    if (!img.complete || img.naturalWidth === 0) problems.push(`broken image: ${img.getAttribute("src")}`);
    const alt = (img.getAttribute("alt") || "").trim();
    if (!alt || /\.(png|svg|jpe?g|gif)$/i.test(alt) || (!/\s/.test(alt) && alt.includes("/"))) problems.push(`image without real alt text: ${img.getAttribute("src")}`);
  }
  // A glue call as the last line of a cell leaves a bare value as output.
  for (const out of article.querySelectorAll(".cell_output .output.text_plain pre, .cell_output pre")) {
    const text = out.textContent.trim();
    if (/^(-?\d[\d_]*(\.\d+)?(e[-+]?\d+)?|'[^']*'|"[^"]*"|None|True|False)$/.test(text)) problems.push(`stray output box: ${text}`);
  }
  if (!desktop && document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) {
    problems.push(`the page scrolls sideways on a phone (${document.documentElement.scrollWidth}px > ${document.documentElement.clientWidth}px)`);
  }
  return problems;
}
