package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.S3TargetSpec;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.file.Durability;
import io.tidemark.targets.file.FileObjectTarget;
import java.net.URI;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Repository locations on the command line: a directory ({@code /var/lib/tidemark/repo} or
 * {@code file:/…}, {@code file:/…?durability=filesystem} for one on a file system of its own) or {@code s3://bucket/prefix?endpoint=http://…&region=…&path-style=true}, with the
 * S3 keys from {@code TIDEMARK_S3_ACCESS_KEY} / {@code TIDEMARK_S3_SECRET_KEY} (or their
 * {@code _FILE} variants).
 */
public final class Locations {

    /** The environment variable holding the access key id of command-line S3 locations. */
    static final String ACCESS_KEY_ENV = "TIDEMARK_S3_ACCESS_KEY";

    /** The environment variable holding the secret key of command-line S3 locations. */
    static final String SECRET_KEY_ENV = S3TargetSpec.COMMAND_LINE_SECRET_KEY_ENV;

    private Locations() {}

    public static ObjectTarget open(String spec) {
        if (spec.startsWith("s3://")) {
            return s3(URI.create(spec));
        }
        if (spec.startsWith("file:")) {
            return file(URI.create(spec));
        }
        return new FileObjectTarget(Path.of(spec));
    }

    /**
     * {@code file:/dir}, or {@code file:/dir?durability=filesystem} for a repository on a file
     * system of its own (ADR 25); any other query is an error naming what is allowed.
     */
    private static ObjectTarget file(URI uri) {
        Durability durability = Durability.PER_FILE;
        if (uri.getRawQuery() != null) {
            for (String kv : uri.getRawQuery().split("&")) {
                int eq = kv.indexOf('=');
                String key = eq < 0 ? kv : kv.substring(0, eq);
                if (!key.equals(Durability.KEY) || eq < 0) {
                    throw new PermanentException("'" + uri + "': a file: location takes only ?" + Durability.KEY + "=<"
                            + String.join("|", Durability.allowed().split(", ")) + ">, not '" + kv + "'");
                }
                durability = Durability.parse(kv.substring(eq + 1));
            }
        }
        return new FileObjectTarget(Path.of(URI.create("file:" + uri.getRawPath())), durability);
    }

    private static ObjectTarget s3(URI uri) {
        Map<String, String> q = new HashMap<>();
        if (uri.getQuery() != null) {
            for (String kv : uri.getQuery().split("&")) {
                int eq = kv.indexOf('=');
                q.put(eq < 0 ? kv : kv.substring(0, eq), eq < 0 ? "true" : kv.substring(eq + 1));
            }
        }
        if (uri.getHost() == null) {
            throw new PermanentException("'" + uri + "' has no bucket: write s3://BUCKET/PREFIX?endpoint=…");
        }
        String accessKeyFile = System.getenv(ACCESS_KEY_ENV + "_FILE");
        String secretKeyFile = System.getenv(SECRET_KEY_ENV + "_FILE");
        S3TargetSpec spec = S3TargetSpec.builder()
                .endpoint(q.get("endpoint") == null ? null : URI.create(q.get("endpoint")))
                .region(q.get("region"))
                .bucket(uri.getHost())
                .prefix(uri.getPath() == null ? "" : uri.getPath().replaceFirst("^/", ""))
                .pathStyle(Boolean.parseBoolean(q.getOrDefault("path-style", "false")))
                .ossCompatible(Boolean.parseBoolean(q.getOrDefault("oss", "false")))
                .accessKeyEnv(accessKeyFile == null ? ACCESS_KEY_ENV : null)
                .accessKeyFile(accessKeyFile)
                .secretKeyEnv(secretKeyFile == null ? SECRET_KEY_ENV : null)
                .secretKeyFile(secretKeyFile)
                .build();
        return spec.open(uri.getHost(), TargetSpec.Origin.COMMAND_LINE);
    }
}
