import { createAction } from "../action";
import type { ApprovalState, Decision } from "@sessionwire/client";

const VERB: Record<string, string> = { approved: "Approved", denied: "Denied", expired: "Expired" };

/** A pending approval with Approve and Deny, or how it was resolved and by whom. */
export function ApprovalCard(props: { approval: ApprovalState; resolve: (decision: Decision) => Promise<unknown> }) {
  const a = () => props.approval;
  const { run: decide, busy, error } = createAction((decision: Decision) => props.resolve(decision));
  const outcome = () => {
    const status = a().status;
    if (status === "pending") return "Waiting for your decision";
    if (status === "expired") return "Expired: nobody answered in time";
    return `${VERB[status]} by ${a().by ?? "someone"}`;
  };
  const expires = () => (a().expires_at ? `expires at ${new Date(a().expires_at as number).toLocaleTimeString()}` : "");
  return (
    <div class="approval" data-testid="approval" data-approval-id={a().id} data-status={a().status}>
      <div class="approval-head">
        <span class="approval-icon" aria-hidden="true">
          ⚠
        </span>
        <span class="approval-action" data-testid="approval-action">
          {a().action}
        </span>
      </div>
      <div class="approval-row">
        <span class={`badge ${a().status}`} data-testid="approval-outcome">
          {outcome()}
        </span>
        <span class="muted" hidden={a().status !== "pending" || !expires()}>
          {expires()}
        </span>
        <span class="approval-buttons">
          <button
            class="btn approve"
            data-testid="approve"
            hidden={a().status !== "pending"}
            disabled={busy()}
            onClick={() => decide("approve")}
          >
            Approve
          </button>
          <button
            class="btn deny"
            data-testid="deny"
            hidden={a().status !== "pending"}
            disabled={busy()}
            onClick={() => decide("deny")}
          >
            Deny
          </button>
        </span>
      </div>
      <div class="inline-error" hidden={!error()}>
        {error()}
      </div>
    </div>
  );
}
