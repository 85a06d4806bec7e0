// highlight.js with the languages the UI highlights: imported only by highlight.ts, lazily, so the
// bundler puts it all in one chunk that the first paint does not wait for.
import core from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import type { HLJSApi } from "highlight.js";

/** A highlight.js instance of its own, with js/ts, python, bash/shell, json, html/xml, css, go, rust, sql, diff, yaml. */
export function createHljs(): HLJSApi {
  const hljs = core.newInstance();
  const languages = { javascript, typescript, python, bash, shell, json, xml, css, go, rust, sql, diff, yaml };
  for (const [name, language] of Object.entries(languages)) hljs.registerLanguage(name, language);
  return hljs;
}
