package io.tidemark.targets;

import io.tidemark.core.target.ObjectTarget;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where a repository lives, as a {@code targets:} entry of the engine config describes it: one
 * record per kind, chosen by {@code type}. A spec is checked once, when it is made, so one that
 * exists is complete and consistent; what needs the target itself or a secret is checked by {@link
 * #open}. A spec never holds a secret: it names the environment variable or file that does ({@link
 * SecretSource}).
 *
 * <p>The engine, restore, verify, DR and the replicator open targets only through {@link #open}, so
 * every one of them gets the same retries and bandwidth limit ({@link TransferLimits}).
 */
public sealed interface TargetSpec permits FileTargetSpec, S3TargetSpec, RadosTargetSpec {

    /** The {@code type} of a target that does not name one. */
    String DEFAULT_TYPE = S3TargetSpec.TYPE;

    /** Every {@code type}, with the spec it selects. */
    Map<String, Class<? extends TargetSpec>> TYPES = orderedTypes();

    /** The {@code type} this spec is written with: {@code file}, {@code s3} or {@code rados}. */
    String type();

    /** How long operations are retried and how fast bytes may flow: the settings every kind shares. */
    TransferLimits transfer();

    /**
     * The bare adapter this spec describes, without retries or a bandwidth limit; reads the secrets
     * it needs.
     *
     * @param name the target's name, for messages
     * @param origin where the settings came from, so that messages name what the operator wrote
     * @throws io.tidemark.core.PermanentException when a secret is missing or the target refuses the
     *     settings
     */
    ObjectTarget adapter(String name, Origin origin);

    /** {@link #open(String, Origin)} for a target of the engine config. */
    default ObjectTarget open(String name) {
        return open(name, Origin.CONFIG);
    }

    /**
     * The target, wrapped: every operation retried on transient faults until {@link
     * TransferLimits#retryDeadline()} once the target has answered a first call (so the start-up
     * check and command-line tools fail fast on a wrong endpoint), and each attempt's object bytes
     * throttled to {@link TransferLimits#bandwidthLimit()} per direction when one is set.
     */
    default ObjectTarget open(String name, Origin origin) {
        ObjectTarget target = adapter(name, origin);
        if (transfer().bandwidthLimit() > 0) {
            target = new RateLimitedObjectTarget(target, transfer().bandwidthLimit());
        }
        return RetryingObjectTarget.failingFastUntilReached(
                target, RetryingObjectTarget.Backoff.upTo(transfer().retryDeadline()));
    }

    /** {@link #open(String)} of each spec, in the map's order. */
    static Map<String, ObjectTarget> openAll(Map<String, ? extends TargetSpec> specs) {
        Map<String, ObjectTarget> out = new LinkedHashMap<>();
        specs.forEach((name, spec) -> out.put(name, spec.open(name)));
        return out;
    }

    /** Where a spec's settings came from, so that messages name the setting the operator wrote. */
    enum Origin {
        /** The {@code targets:} section of the engine config: settings are named by their keys. */
        CONFIG,
        /** A location on the command line: S3 keys from {@code TIDEMARK_S3_*} environment variables. */
        COMMAND_LINE
    }

    private static Map<String, Class<? extends TargetSpec>> orderedTypes() {
        Map<String, Class<? extends TargetSpec>> types = new LinkedHashMap<>();
        types.put(S3TargetSpec.TYPE, S3TargetSpec.class);
        types.put(RadosTargetSpec.TYPE, RadosTargetSpec.class);
        types.put(FileTargetSpec.TYPE, FileTargetSpec.class);
        return Collections.unmodifiableMap(types);
    }
}
