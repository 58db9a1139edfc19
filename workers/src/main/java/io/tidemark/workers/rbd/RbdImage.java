package io.tidemark.workers.rbd;

import java.util.Optional;
import java.util.regex.Pattern;

/**
 * One RBD image: its pool, its namespace (empty for the default one) and its name, as QEMU's {@code
 * rbd} block driver names them ({@code pool}, {@code namespace}, {@code image}).
 */
public record RbdImage(String pool, Optional<String> namespace, String name) {

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.+-][A-Za-z0-9_.+-]*");

    public RbdImage {
        check("pool", pool);
        namespace.ifPresent(n -> check("namespace", n));
        check("image", name);
    }

    public static RbdImage of(String pool, String name) {
        return new RbdImage(pool, Optional.empty(), name);
    }

    /** The image spec of the {@code rbd} CLI: {@code pool/[namespace/]image}. */
    public String spec() {
        return pool + "/" + namespace.map(n -> n + "/").orElse("") + name;
    }

    /** The spec of one of its snapshots: {@code pool/[namespace/]image@snapshot}. */
    public String spec(String snapshot) {
        return spec() + "@" + snapshot;
    }

    @Override
    public String toString() {
        return spec();
    }

    private static void check(String what, String value) {
        if (!NAME.matcher(value).matches()) {
            throw new IllegalArgumentException("bad RBD " + what + " name '" + value + "'");
        }
    }
}
