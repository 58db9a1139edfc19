package io.tidemark.engine;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.policies.BandwidthSyntax;
import io.tidemark.policies.PolicyParser;
import io.tidemark.targets.FileTargetSpec;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.TransferLimits;
import io.tidemark.targets.file.FileObjectTarget;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the engine adds to the target specs of its config: the text syntax of their durations and
 * rates (shared with policies), the immutability locks and replica repositories the targets hold,
 * and the location a command-line {@code --target} names. Opening a target is {@link
 * TargetSpec#open}.
 */
public final class Targets {

    private Targets() {}

    /**
     * {@code retryDeadline}: a duration such as {@code 30s}, {@code 5m} or {@code 1h30m}; {@code 0s}
     * means a single attempt; unset means {@link TransferLimits#DEFAULT_RETRY_DEADLINE}.
     */
    static Duration retryDeadline(String target, String text) {
        if (text == null || text.isBlank()) {
            return TransferLimits.DEFAULT_RETRY_DEADLINE;
        }
        return duration("target '" + target + "': retryDeadline", text);
    }

    /**
     * A duration such as {@code 30s}, {@code 5m}, {@code 1h30m} or {@code 7d}; {@code what} names
     * the setting in the error.
     *
     * @throws InvalidInputException (exit 1) when it is not one
     */
    public static Duration duration(String what, String text) {
        try {
            return PolicyParser.parseDuration(text.strip());
        } catch (IllegalArgumentException e) {
            throw new InvalidInputException(what + " '" + text + "' is not a duration such as 30s, 5m or 1h30m");
        }
    }

    /**
     * {@code bandwidthLimit} in bytes per second: a number and a unit per second, such as {@code
     * 20MiB/s}, {@code 500KB/s} or {@code 1.5GiB/s} (KB, MB, GB are powers of 1000; KiB, MiB, GiB
     * of 1024); unset means 0, no limit.
     */
    static long bandwidthLimit(String target, String text) {
        if (text == null || text.isBlank()) {
            return 0;
        }
        return BandwidthSyntax.parse(text)
                .orElseThrow(() -> new PermanentException(
                        "target '" + target + "': bandwidthLimit '" + text + "' is not " + BandwidthSyntax.EXAMPLE));
    }

    /** What the targets know about immutability locks on their objects. */
    public static io.tidemark.replicator.Pruner.Locks locks(Map<String, ObjectTarget> targets) {
        return (location, key) -> {
            ObjectTarget t = targets.get(location);
            return t == null ? java.util.Optional.empty() : t.retainUntil(key);
        };
    }

    /**
     * The repositories the targets hold, as replicas of {@code primary} (an encrypted one is read with
     * the primary's keys, so no passphrase is asked again); a target with nothing written yet (no
     * config) is left out.
     */
    public static Map<String, io.tidemark.repository.Repository> repositories(
            io.tidemark.repository.Repository primary, Map<String, ObjectTarget> targets) {
        Map<String, io.tidemark.repository.Repository> out = new LinkedHashMap<>();
        targets.forEach((name, t) -> {
            if (t.exists(io.tidemark.format.ObjectKeys.CONFIG)) {
                out.put(name, primary.replicaOn(t));
            }
        });
        return out;
    }

    /**
     * The primary repository of {@code c} ({@link EngineConfig#primary()}), as every role and
     * command opens it: a directory is the bare {@link FileObjectTarget} (as the host-local default
     * always was), with its {@code durability}; an S3 or RADOS primary gets the spec's retries and bandwidth limit. Not checked:
     * a directory that does not exist fails at its first use, naming it.
     */
    public static ObjectTarget primary(EngineConfig c) {
        TargetSpec spec = c.primary();
        if (spec instanceof FileTargetSpec file) {
            return new FileObjectTarget(file.path(), file.durability());
        }
        return spec.open(PRIMARY);
    }

    /** The name the primary repository goes by in messages about its settings ({@code repository:}). */
    public static final String PRIMARY = "repository";

    /**
     * The location a command-line {@code --target} names: {@code local} (the primary repository,
     * {@link #primary}), a target of the engine config by name, or a location (a directory, {@code
     * file:…} or {@code s3://…}).
     */
    public static ObjectTarget named(EngineConfig c, String name) {
        if (io.tidemark.replicator.Pruner.LOCAL.equals(name)) {
            return primary(c);
        }
        TargetSpec t = c.targets().get(name);
        if (t != null) {
            return t.open(name);
        }
        if (!name.contains("/") && !name.contains(":")) {
            throw new PermanentException("no target named '" + name + "': the engine config defines "
                    + (c.targets().isEmpty() ? "none" : c.targets().keySet())
                    + "; give 'local', one of those, a directory or an s3:// location");
        }
        return Locations.open(name);
    }
}
