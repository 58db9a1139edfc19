package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.targets.file.FileObjectTarget;
import java.net.URI;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Repository locations on the command line: a directory ({@code /var/lib/tidemark/repo} or
 * {@code file:/…}) or {@code s3://bucket/prefix?endpoint=http://…&region=…&path-style=true}, with the
 * S3 keys from {@code TIDEMARK_S3_ACCESS_KEY} / {@code TIDEMARK_S3_SECRET_KEY} (or their
 * {@code _FILE} variants).
 */
public final class Locations {

    /** The environment variable holding the secret key of command-line S3 locations. */
    static final String SECRET_KEY_ENV = "TIDEMARK_S3_SECRET_KEY";

    private Locations() {}

    public static ObjectTarget open(String spec) {
        if (spec.startsWith("s3://")) {
            return s3(URI.create(spec));
        }
        if (spec.startsWith("file:")) {
            return new FileObjectTarget(Path.of(URI.create(spec)));
        }
        return new FileObjectTarget(Path.of(spec));
    }

    private static ObjectTarget s3(URI uri) {
        Map<String, String> q = new HashMap<>();
        if (uri.getQuery() != null) {
            for (String kv : uri.getQuery().split("&")) {
                int eq = kv.indexOf('=');
                q.put(eq < 0 ? kv : kv.substring(0, eq), eq < 0 ? "true" : kv.substring(eq + 1));
            }
        }
        String prefix = uri.getPath() == null ? "" : uri.getPath().replaceFirst("^/", "");
        EngineConfig.TargetConfig c = EngineConfig.TargetConfig.s3(
                q.get("endpoint"),
                q.getOrDefault("region", "us-east-1"),
                uri.getHost(),
                prefix,
                Boolean.parseBoolean(q.getOrDefault("path-style", "false")),
                Boolean.parseBoolean(q.getOrDefault("oss", "false")),
                System.getenv("TIDEMARK_S3_ACCESS_KEY_FILE") == null ? "TIDEMARK_S3_ACCESS_KEY" : null,
                System.getenv("TIDEMARK_S3_ACCESS_KEY_FILE"),
                System.getenv(SECRET_KEY_ENV + "_FILE") == null ? SECRET_KEY_ENV : null,
                System.getenv(SECRET_KEY_ENV + "_FILE"));
        if (uri.getHost() == null) {
            throw new PermanentException("'" + uri + "' has no bucket: write s3://BUCKET/PREFIX?endpoint=…");
        }
        return Targets.open(uri.getHost(), c, Targets.Origin.COMMAND_LINE);
    }
}
