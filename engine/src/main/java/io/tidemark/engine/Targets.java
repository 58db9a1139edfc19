package io.tidemark.engine;

import io.tidemark.core.InvalidInputException;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.policies.BandwidthSyntax;
import io.tidemark.policies.PolicyParser;
import io.tidemark.targets.RateLimitedObjectTarget;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.targets.rados.RadosObjectTarget;
import io.tidemark.targets.rados.RadosTargetConfig;
import io.tidemark.targets.s3.ObjectLockRetention;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.targets.s3.S3TargetConfig;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds {@link ObjectTarget}s from the engine config, reading secrets from files or the environment. */
public final class Targets {

    /** How long an object operation on a target is retried when the config does not say. */
    static final Duration DEFAULT_RETRY_DEADLINE = Duration.ofMinutes(5);

    private Targets() {}

    public static Map<String, ObjectTarget> open(Map<String, EngineConfig.TargetConfig> configs) {
        Map<String, ObjectTarget> out = new LinkedHashMap<>();
        configs.forEach((name, c) -> out.put(name, open(name, c)));
        return out;
    }

    /**
     * The target {@code c} describes, wrapped: every operation retried on transient faults until the
     * target's {@code retryDeadline} (default {@link #DEFAULT_RETRY_DEADLINE}) once the target has
     * answered a first call (so the start-up check and command-line tools fail fast on a wrong
     * endpoint), and each attempt's object bytes throttled to {@code bandwidthLimit} per direction
     * when one is set.
     */
    public static ObjectTarget open(String name, EngineConfig.TargetConfig c) {
        return open(name, c, Origin.CONFIG);
    }

    /** Where a target's settings came from, so that messages name the setting the operator wrote. */
    enum Origin {
        /** The {@code targets:} section of the engine config: settings are named by their config keys. */
        CONFIG,
        /** A location on the command line: keys from {@code TIDEMARK_S3_*} environment variables. */
        COMMAND_LINE
    }

    /** {@link #open(String, EngineConfig.TargetConfig)} for settings that came from {@code origin}. */
    public static ObjectTarget open(String name, EngineConfig.TargetConfig c, Origin origin) {
        Duration deadline = retryDeadline(name, c.retryDeadline());
        long limit = bandwidthLimit(name, c.bandwidthLimit());
        ObjectTarget target = adapter(name, c, origin);
        if (limit > 0) {
            target = new RateLimitedObjectTarget(target, limit);
        }
        return RetryingObjectTarget.failingFastUntilReached(target, RetryingObjectTarget.Backoff.upTo(deadline));
    }

    /**
     * {@code retryDeadline}: a duration such as {@code 30s}, {@code 5m} or {@code 1h30m}; {@code 0s}
     * means a single attempt; unset means {@link #DEFAULT_RETRY_DEADLINE}.
     */
    static Duration retryDeadline(String target, String text) {
        if (text == null || text.isBlank()) {
            return DEFAULT_RETRY_DEADLINE;
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

    private static ObjectTarget adapter(String name, EngineConfig.TargetConfig c, Origin origin) {
        String type = c.type() == null ? "s3" : c.type();
        switch (type) {
            case "file":
                if (c.path() == null) {
                    throw new PermanentException("target '" + name + "': type file needs 'path'");
                }
                return new FileObjectTarget(c.path());
            case "s3":
                return S3ObjectTarget.create(new S3TargetConfig(
                                c.endpoint() == null ? null : URI.create(c.endpoint()),
                                c.region() == null ? "us-east-1" : c.region(),
                                c.bucket(),
                                c.prefix(),
                                Boolean.TRUE.equals(c.pathStyle()),
                                Boolean.TRUE.equals(c.ossCompatible()),
                                c.storageClass(),
                                secret(name, "access key", c.accessKeyEnv(), c.accessKeyFile()),
                                secret(name, "secret key", c.secretKeyEnv(), c.secretKeyFile()),
                                objectLock(name, c))
                        .withCredentialsFrom(
                                secretFrom(name, "secretKey", c.secretKeyEnv(), c.secretKeyFile(), origin)));
            case "rados":
                return RadosObjectTarget.connect(radosConfig(name, c));
            default:
                throw new PermanentException(
                        "target '" + name + "': unknown type '" + type + "'; use s3, rados or file");
        }
    }

    /**
     * {@code type: rados}: {@code pool}, {@code monHost} and/or {@code confFile}, {@code clientName}
     * (default {@code client.admin}), the cephx key from {@code keyEnv} or {@code keyFile} (or the
     * conf file's keyring when neither is set), {@code prefix}.
     */
    static RadosTargetConfig radosConfig(String name, EngineConfig.TargetConfig c) {
        if (c.monHost() == null && c.confFile() == null) {
            throw new PermanentException("target '" + name + "': type rados needs 'monHost' or 'confFile'");
        }
        String key = c.keyEnv() == null && c.keyFile() == null && c.confFile() != null
                ? null // from the keyring the conf file names
                : secret(name, "key", c.keyEnv(), c.keyFile());
        try {
            return new RadosTargetConfig(
                    c.confFile(),
                    c.monHost(),
                    c.clientName() == null ? "client.admin" : c.clientName(),
                    key,
                    c.pool(),
                    c.prefix());
        } catch (PermanentException e) {
            throw new PermanentException("target '" + name + "': " + e.getMessage(), e);
        }
    }

    /** {@code objectLockMode} (GOVERNANCE or COMPLIANCE) with {@code objectLockDays}, both or neither. */
    static ObjectLockRetention objectLock(String name, EngineConfig.TargetConfig c) {
        if (c.objectLockMode() == null && c.objectLockDays() == null) {
            return null;
        }
        if (c.objectLockMode() == null || c.objectLockDays() == null) {
            throw new PermanentException("target '" + name + "': set both objectLockMode (GOVERNANCE or COMPLIANCE)"
                    + " and objectLockDays, or neither");
        }
        try {
            return ObjectLockRetention.ofDays(ObjectLockRetention.mode(c.objectLockMode()), c.objectLockDays());
        } catch (PermanentException e) {
            throw new PermanentException("target '" + name + "': " + e.getMessage(), e);
        }
    }

    private static String secret(String target, String what, String env, String file) {
        if (env != null) {
            String v = System.getenv(env);
            if (v == null || v.isEmpty()) {
                throw new PermanentException("target '" + target + "': the " + what
                        + " comes from environment variable " + env + ", which is not set");
            }
            return v;
        }
        if (file != null) {
            try {
                return Files.readString(Path.of(file)).strip();
            } catch (IOException e) {
                throw new PermanentException(
                        "target '" + target + "': cannot read the " + what + " from " + file + ": " + e.getMessage(),
                        e);
            }
        }
        throw new PermanentException("target '" + target + "': no " + what + "; set " + what.replace(' ', '-')
                + " via an *Env or *File setting (secrets never go into config or policy files)");
    }

    /**
     * Where a secret was read from, naming the setting the operator actually used: the config key
     * ({@code secretKeyFile /etc/… of target 'offsite'}) or, for a command-line location, the
     * environment variable ({@code TIDEMARK_S3_SECRET_KEY}, {@code TIDEMARK_S3_SECRET_KEY_FILE}).
     *
     * @param setting the config key without its Env/File ending, such as {@code secretKey}
     */
    static String secretFrom(String target, String setting, String env, String file, Origin origin) {
        if (origin == Origin.COMMAND_LINE) {
            return env != null
                    ? "from environment variable " + env
                    : "from the file " + file + " named by " + Locations.SECRET_KEY_ENV + "_FILE";
        }
        return env != null
                ? "from environment variable " + env + ", set by " + setting + "Env of target '" + target + "'"
                : "from the file " + file + ", set by " + setting + "File of target '" + target + "'";
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
     * The location a command-line {@code --target} names: {@code local} (the primary repository in
     * {@code primary}), a target of the engine config by name, or a location (a directory, {@code
     * file:…} or {@code s3://…}).
     */
    public static ObjectTarget named(EngineConfig c, Path primary, String name) {
        if (io.tidemark.replicator.Pruner.LOCAL.equals(name)) {
            return new FileObjectTarget(primary);
        }
        EngineConfig.TargetConfig t = c.targets() == null ? null : c.targets().get(name);
        if (t != null) {
            return open(name, t);
        }
        if (!name.contains("/") && !name.contains(":")) {
            throw new PermanentException("no target named '" + name + "': the engine config defines "
                    + (c.targets() == null ? "none" : c.targets().keySet())
                    + "; give 'local', one of those, a directory or an s3:// location");
        }
        return Locations.open(name);
    }
}
