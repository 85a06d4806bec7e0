// Links that open a conversation in any browser: `<page>#/s/<id>?token=<token>`.
//
// The token is the session's capability: whoever holds the link can read the conversation and act
// in it. It travels in the fragment, which browsers never send to the server, and the page takes it
// out of the address bar once it has kept it.

/** Where a page's address points: a conversation (with the token it carries, if any), or none. */
export interface Route {
  id: string | null;
  token: string | null;
}

/** A conversation to open: its id and its token. */
export interface Target {
  id: string;
  token: string;
}

/** Parse a location hash: `#/s/<id>` or `#/s/<id>?token=<token>`. */
export function parseHash(hash: string): Route {
  const match = /^#\/s\/([^?]+)(?:\?(.*))?$/.exec(hash);
  if (!match) return { id: null, token: null };
  let id: string;
  try {
    id = decodeURIComponent(match[1]);
  } catch {
    return { id: null, token: null }; // a mangled escape: no conversation
  }
  const token = new URLSearchParams(match[2] ?? "").get("token");
  return { id, token: token || null };
}

/** The hash of a conversation's page, with its token when given. */
export function sessionHash(id: string, token: string | null = null): string {
  const hash = `#/s/${encodeURIComponent(id)}`;
  return token ? `${hash}?token=${encodeURIComponent(token)}` : hash;
}

/** The link that opens the conversation in any browser: the page's address (no hash) and the hash with the token. */
export function shareLink(page: string, id: string, token: string): string {
  return page.replace(/#.*$/, "") + sessionHash(id, token);
}

/**
 * What a person typed in the "open a conversation" form: a link (which may carry the token) or a
 * bare id, and a token (needed when the link carries none). `page` is this page's address: a link
 * to another server cannot be opened here (its id and token mean nothing to this server), and text
 * before `#/s/` must be a whole link (scheme and host) for this page's origin, never resolved
 * against this page: a token meant for another server is never sent to this one.
 */
export function parseTarget(input: string, token: string, page: string): Target | { error: string } {
  const text = input.trim();
  const given = token.trim();
  if (!text) return { error: "Paste a link, or enter the conversation's id and token." };
  const at = text.indexOf("#/s/");
  if (at >= 0) {
    // Only a whole link says which server it is for: "elsewhere.example/#/s/…" (no scheme) or
    // "/#/s/…" would read as a path on this page, and another server's token would be sent here.
    if (at > 0) {
      let url: URL;
      try {
        url = new URL(text); // no base: a relative address is refused, not resolved against this page
      } catch {
        return {
          error: "That is not a whole link: paste it with its http:// or https://, or enter the id and token.",
        };
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        return { error: "That is not a link to a web page: paste the link the Share button gives." };
      }
      const here = new URL(page);
      if (url.origin !== here.origin) {
        return { error: `That link is for another server (${url.origin}): open it there.` };
      }
    }
    const route = parseHash(text.slice(at));
    if (!route.id) return { error: "That link names no conversation." };
    const key = route.token ?? given;
    if (!key) return { error: "That link carries no token: enter the token too." };
    return { id: route.id, token: key };
  }
  if (/\s|\/|\?|#/.test(text)) return { error: "That is neither a conversation link nor an id." };
  if (!given) return { error: "Enter the conversation's token too (or paste a link that carries it)." };
  return { id: text, token: given };
}
