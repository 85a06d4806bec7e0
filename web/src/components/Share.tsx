import { shareLink } from "../share";
import { CopyButton } from "./CopyButton";

/** The link that opens this conversation in any browser, to copy, and what holding it allows. */
export function SharePanel(props: { id: string; token: string }) {
  const link = () => shareLink(location.href, props.id, props.token);
  return (
    <div class="share">
      <p class="muted">Open it in another browser or on another device: the link adds it to that browser's list.</p>
      <div class="share-row">
        <textarea
          class="mono"
          data-testid="share-link"
          aria-label="Link to this conversation"
          readOnly
          rows={3}
          value={link()}
          onFocus={(event) => event.currentTarget.select()}
        />
        <CopyButton text={link} testid="copy-link" title="Copy the link" label="Copy link" class="btn" autofocus />
      </div>
      <p class="share-warning" data-testid="share-warning">
        The link carries the conversation's token: anyone who has it can read this conversation and act in it (send,
        approve, cancel). Share it only with people you trust.
      </p>
    </div>
  );
}
