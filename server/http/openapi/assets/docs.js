// @ts-check
// The API reference page: filter endpoints as you type, copy curl commands. The page is
// complete without this script; it only adds convenience. No network access, no innerHTML.
(() => {
  const filter = /** @type {HTMLInputElement | null} */ (document.getElementById("filter"));
  const ops = Array.from(document.querySelectorAll("article.op"));
  const links = Array.from(document.querySelectorAll(".side li"));
  const sections = Array.from(document.querySelectorAll("section.tag"));

  function apply() {
    const words = (filter ? filter.value : "").toLowerCase().split(/\s+/).filter(Boolean);
    const matches = (/** @type {Element} */ el) => {
      const text = (el.getAttribute("data-search") || "").toLowerCase();
      return words.every((w) => text.includes(w));
    };
    for (const el of ops) el.classList.toggle("hidden", !matches(el));
    for (const el of links) el.classList.toggle("hidden", !matches(el));
    for (const s of sections) {
      const visible = s.querySelector("article.op:not(.hidden)") !== null;
      s.classList.toggle("hidden", !visible);
    }
  }
  if (filter) {
    filter.addEventListener("input", apply);
    document.addEventListener("keydown", (e) => {
      if (e.key === "/" && document.activeElement !== filter) {
        e.preventDefault();
        filter.focus();
      }
    });
  }

  // Examples are rendered with a placeholder host; show and copy this server's own.
  for (const pre of document.querySelectorAll("pre.curl")) {
    pre.textContent = (pre.textContent || "").replace("http://HOST", window.location.origin);
  }

  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const pre = button.parentElement && button.parentElement.querySelector("pre");
      if (!pre) return;
      try {
        await navigator.clipboard.writeText(pre.textContent || "");
        button.textContent = "Copied";
      } catch {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
})();
