// MathJax settings for pymdownx.arithmatex (generic mode), as mkdocs-material documents them.
// MathJax itself is loaded by the browser from a CDN (mkdocs.yml, extra_javascript);
// building the site needs no network.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// Material's document$ fires for every page it shows: typeset that page's math.
document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
