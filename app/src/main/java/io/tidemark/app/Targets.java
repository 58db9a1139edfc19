package io.tidemark.app;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.replicator.s3.S3ObjectTarget;
import io.tidemark.replicator.s3.S3TargetConfig;
import io.tidemark.repository.file.FileObjectTarget;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds {@link ObjectTarget}s from the engine config, reading secrets from files or the environment. */
final class Targets {

    private Targets() {}

    static Map<String, ObjectTarget> open(Map<String, EngineConfig.TargetConfig> configs) {
        Map<String, ObjectTarget> out = new LinkedHashMap<>();
        configs.forEach((name, c) -> out.put(name, open(name, c)));
        return out;
    }

    static ObjectTarget open(String name, EngineConfig.TargetConfig c) {
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
                        secret(name, "secret key", c.secretKeyEnv(), c.secretKeyFile())));
            default:
                throw new PermanentException("target '" + name + "': unknown type '" + type + "'; use s3 or file");
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

    /** What the targets know about immutability locks on their objects. */
    static io.tidemark.replicator.Pruner.Locks locks(Map<String, ObjectTarget> targets) {
        return io.tidemark.replicator.Pruner.Locks.NONE;
    }
}
