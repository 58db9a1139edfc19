package io.tidemark.scheduler.hook;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * An operator's "back up this VM now": one snapshot job for {@code vm}, with trigger {@code manual}
 * and the request id, under {@code policy} or, when none is named, the first policy by name that
 * selects the VM. The request id is the idempotency key: the same id for the same VM yields the same
 * job, so a retried request makes no second restore point.
 *
 * @param vm the VM, as the inventory names it
 * @param policy the policy to run the job under; it must select the VM
 * @param requestId the idempotency key, chosen by the caller (the CLI makes a random one when the
 *     operator gives none)
 * @param level how far the snapshot must get before the answer
 * @param timeout how long to wait for the level, from the submission
 * @throws InvalidHookException if a field is empty, longer than {@link
 *     PreDeployHook#MAX_FIELD_LENGTH} characters (the request id: {@link #MAX_REQUEST_ID_LENGTH}) or
 *     holds a control character
 */
public record BackupRequest(String vm, Optional<String> policy, String requestId, WaitLevel level, Duration timeout) {

    /** The longest request id accepted, in characters. */
    public static final int MAX_REQUEST_ID_LENGTH = 100;

    public BackupRequest {
        PreDeployHook.check("vm", vm);
        Objects.requireNonNull(policy, "policy");
        policy.ifPresent(p -> PreDeployHook.check("policy", p));
        PreDeployHook.check("requestId", requestId);
        if (requestId.length() > MAX_REQUEST_ID_LENGTH) {
            throw new InvalidHookException(
                    "requestId", "'requestId' is longer than " + MAX_REQUEST_ID_LENGTH + " characters");
        }
        Objects.requireNonNull(level, "level");
        Objects.requireNonNull(timeout, "timeout");
    }

    /** In words, for logs and messages. */
    public String describe() {
        return "backup vm=" + vm + policy.map(p -> " policy=" + p).orElse("") + " request=" + requestId;
    }
}
