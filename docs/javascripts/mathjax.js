// MathJax settings for pymdownx.arithmatex (generic mode), as mkdocs-material documents them.
// MathJax itself is served by the site (javascripts/mathjax/, copied from the installed
// django-static-mathjax package by docs/hooks/offline_assets.py): it renders with no network.
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
