package io.tidemark.core.target;

import io.tidemark.core.PermanentException;

/**
 * The key rules every {@link ObjectTarget} enforces, in one place: a key is non-empty, relative,
 * '/'-separated, with no empty, {@code .} or {@code ..} segment and no NUL. Adapters may add rules of
 * their own technology.
 */
public final class TargetKeys {

    private TargetKeys() {}

    /**
     * Returns {@code key} if it is valid.
     *
     * @param target the target's {@link ObjectTarget#describe() description}, for the message
     * @throws PermanentException naming the key, the target and the rule it breaks
     */
    public static String check(String key, String target) {
        if (key == null || key.isEmpty()) {
            throw invalid(key, target, "keys are non-empty");
        }
        if (key.startsWith("/")) {
            throw invalid(key, target, "it is absolute; keys are relative to the target's root");
        }
        if (key.indexOf('\0') >= 0) {
            throw invalid(key, target, "it contains a NUL character");
        }
        for (String segment : key.split("/", -1)) {
            if (segment.isEmpty()) {
                throw invalid(key, target, "it has an empty segment (a leading, trailing or doubled '/')");
            }
            if (segment.equals(".") || segment.equals("..")) {
                throw invalid(key, target, "it has a '" + segment + "' segment, which could escape the target's root");
            }
        }
        return key;
    }

    /** The error for a key that breaks a rule. */
    public static PermanentException invalid(String key, String target, String why) {
        return new PermanentException(
                "invalid object key '" + key + "' for " + target + ": " + why + " (a bug in the caller)");
    }
}
